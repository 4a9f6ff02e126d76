/* POST /auth/introspect: RFC 7662 for access tokens; never says why not. */
#include "config.h"

#include <string.h>

#include "extern.h"

static const struct field_spec introspect_token = { "token", FIELD_STRING,
    FIELD_REQUIRED, NULL, VALIDATE_WHY_REQUIRED };

void
route_introspect(struct request *r)
{
	struct claims	 c;
	struct field_value v;
	json_t		*body, *out;
	const char	*tok;
	char		 hdr[FA_TOKEN_MAX + 8];
	int		 rc;

	if ((body = request_json(r)) == NULL)
		return;
	if (route_fields(r, body, &introspect_token, 1, 0, &v) == -1)
		goto out;
	tok = v.s;
	rc = 1;
	if (strlen(tok) <= FA_TOKEN_MAX) {
		snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
		rc = auth_check(hdr, &c);
	}
	if (rc == -1) {
		resp_unavailable(r);
		goto out;
	}
	if (rc == 1)
		out = json_pack("{s:b}", "active", 0);
	else
		out = json_pack("{s:b, s:s, s:s, s:o, s:s, s:s, s:I, s:I, "
		    "s:s, s:s, s:s, s:i, s:o}", "active", 1, "sub", c.sub,
		    "email", c.email, "roles", roles_json(c.roles),
		    "sid", c.sid, "jti", c.jti, "iat", (json_int_t)c.iat,
		    "exp", (json_int_t)c.exp, "iss", cfg->jwt_issuer,
		    "aud", cfg->jwt_audience, "token_type", "access_token",
		    "aal", c.aal, "amr", token_amr(c.aal));
	resp_json(r, 200, out);
	resp_header(r, "Cache-Control", "no-store");
out:
	json_decref(body);
}
