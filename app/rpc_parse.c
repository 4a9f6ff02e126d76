/*
 * rpc_parse.c: the NestJS request envelope of the RPC responder (rpc.c),
 * parsed from memory with no I/O, so the unit test and fuzz_json call it
 * directly.  {"pattern", "data": {"token"}, "id"}: the id is kept as its
 * compact JSON text (a string or an integer), echoed as is in the reply.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"

enum why {
	WHY_JSON,
	WHY_NO_ID,
	WHY_ID_TYPE,
	WHY_ID_LONG,
	WHY_DATA,
	WHY_TOKEN,
	WHY_SIZE,
	WHY__MAX
};

static const char *const parse_why[WHY__MAX] = {
	[WHY_JSON] = "not a JSON object",
	[WHY_NO_ID] = "no id (a NestJS event)",
	[WHY_ID_TYPE] = "id not a string or an integer",
	[WHY_ID_LONG] = "id too long",
	[WHY_DATA] = "data not an object",
	[WHY_TOKEN] = "token too long",
	[WHY_SIZE] = "request too large",
};

enum rpc_parse
rpc_parse(const char *msg, size_t len, struct rpc_req *req, json_t **root,
    const char **why)
{
	json_t		*o, *id, *data, *tok;
	char		*idtext = NULL;
	enum why	 w;

	memset(req, 0, sizeof(*req));
	*root = NULL;
	*why = NULL;
	if (len > RPC_MSG_MAX) {
		w = WHY_SIZE;
		goto drop;
	}
	if ((o = json_parse_object(msg, len)) == NULL) {
		w = WHY_JSON;
		goto drop;
	}
	*root = o;
	if ((id = json_object_get(o, "id")) == NULL) {
		w = WHY_NO_ID;
		goto drop;
	}
	if (!json_is_string(id) && !json_is_integer(id)) {
		w = WHY_ID_TYPE;
		goto drop;
	}
	if ((idtext = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL ||
	    strlen(idtext) > RPC_ID_MAX) {
		w = WHY_ID_LONG;
		goto drop;
	}
	memcpy(req->id, idtext, strlen(idtext) + 1);
	free(idtext);
	idtext = NULL;
	if (!json_is_object(data = json_object_get(o, "data"))) {
		w = WHY_DATA;
		goto drop;
	}
	tok = json_object_get(data, "token");
	if (!json_is_string(tok) || json_string_length(tok) == 0)
		return RPC_NO_TOKEN;
	if (json_string_length(tok) > FA_TOKEN_MAX) {
		w = WHY_TOKEN;
		goto drop;
	}
	req->token = json_string_value(tok);
	req->toklen = json_string_length(tok);
	return RPC_OK;
drop:
	free(idtext);
	json_decref(*root);
	*root = NULL;
	memset(req, 0, sizeof(*req));
	*why = parse_why[w];
	return RPC_DROP;
}
