/*
 * GET /auth/openapi.json: the OpenAPI 3.1 description of the contract,
 * docs/openapi.json compiled in (the build turns it into
 * app/openapi-json.inc).  Its "servers" URL is replaced by the configured
 * prefix once, on the first request; the text is then shared read-only.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

static const unsigned char openapi_json[] = {
#include "app/openapi-json.inc"
};

static pthread_once_t	 openapi_once = PTHREAD_ONCE_INIT;
static char		*openapi_text;	/* NULL: the document did not parse */
static size_t		 openapi_len;

static void
openapi_build(void)
{
	json_t		*doc, *servers;
	json_error_t	 e;
	char		*prefix;
	size_t		 n;

	doc = json_loadb((const char *)openapi_json, sizeof(openapi_json),
	    JSON_REJECT_DUPLICATES, &e);
	if (doc == NULL) {
		log_error(NULL, "openapi: embedded document, line %d: %s",
		    e.line, e.text);
		return;
	}
	prefix = xstrdup(cfg->prefix);
	n = strlen(prefix);
	while (n > 1 && prefix[n - 1] == '/')
		prefix[--n] = '\0';
	servers = json_pack("[{s:s, s:s}]", "url", prefix, "description",
	    "The configured prefix.");
	if (servers != NULL)
		json_object_set_new(doc, "servers", servers);
	if ((openapi_text = json_dumps(doc, JSON_COMPACT)) != NULL)
		openapi_len = strlen(openapi_text);
	free(prefix);
	json_decref(doc);
}

void
route_openapi(struct request *r)
{
	pthread_once(&openapi_once, openapi_build);
	if (openapi_text == NULL) {
		resp_error(r, ERR_INTERNAL, NULL);
		return;
	}
	free(r->out);
	r->out = xstrdup(openapi_text);
	r->outlen = openapi_len;
	r->status = 200;
	resp_header(r, "Cache-Control", "public, max-age=300");
}
