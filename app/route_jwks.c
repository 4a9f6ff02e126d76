/* GET /auth/.well-known/jwks.json: the public verification keys. */
#include "config.h"

#include <stdio.h>

#include "extern.h"

void
route_jwks(struct request *r)
{
	char	 cc[64];

	snprintf(cc, sizeof(cc), "public, max-age=%ld", cfg->jwks_max_age);
	resp_json(r, 200, token_jwks());
	resp_header(r, "Cache-Control", cc);
}
