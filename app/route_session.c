/* GET /auth/sessions and DELETE /auth/sessions/{id}: the caller's own. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"

void
route_sessions_list(struct request *r)
{
	struct claims		 c;
	struct session_info	*list = NULL;
	size_t			 n = 0, i;
	json_t			*arr;
	char			 created[40], used[40];

	if (route_bearer(r, &c) == -1)
		return;
	if (store_session_list(c.sub, &list, &n) == -1) {
		resp_unavailable(r);
		return;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		rfc3339(created, list[i].created_ms);
		rfc3339(used, list[i].last_used_ms);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, "
		    "s:s, s:b}", "id", list[i].id, "createdAt", created,
		    "lastUsedAt", used, "ip", list[i].ip,
		    "userAgent", list[i].user_agent,
		    "current", strcmp(list[i].id, c.sid) == 0));
	}
	free(list);
	resp_json(r, 200, json_pack("{s:o}", "sessions", arr));
	resp_header(r, "Cache-Control", "no-store");
}

void
route_sessions_revoke(struct request *r)
{
	struct claims	 c;
	unsigned char	 b[16];
	const char	*sid = request_param(r);
	int		 rc;

	if (route_bearer(r, &c) == -1)
		return;
	if (sid == NULL || uuid_parse(b, sid, strlen(sid)) == -1) {
		resp_error(r, ERR_NOT_FOUND, NULL);
		return;
	}
	rc = store_session_revoke(c.sub, sid, cfg->access_ttl);
	if (rc == -1) {
		resp_unavailable(r);
		return;
	}
	if (rc == 1) {
		resp_error(r, ERR_NOT_FOUND, NULL);
		return;
	}
	(void)session_revoked(r, c.sub, c.email, sid, SESSION_END_USER);
	resp_empty(r, 204);
}
