/* GET /auth/me: the caller's user record. */
#include "config.h"

#include <string.h>

#include "extern.h"

void
route_me(struct request *r)
{
	struct claims	 c;
	struct user	 u;

	memset(&u, 0, sizeof(u));
	if (route_bearer(r, &c) == -1)
		return;
	switch (db_user_by_id(c.sub, &u)) {
	case DB_OK:
		if (u.disabled)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_json(r, 200, user_json(&u));
		break;
	case DB_NOTFOUND:
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		break;
	default:
		resp_unavailable(r);
		break;
	}
	resp_header(r, "Cache-Control", "no-store");
	user_free(&u);
}
