/*
 * rpc.c, rpc_parse.c: auth.validate_token over the NestJS Redis transport;
 * included at the end of extern.h, after every type it uses.
 */
#ifndef FA_RPC_H
#define FA_RPC_H

/*
 * rpc.c: auth.validate_token over the NestJS Redis transport.  A thread of
 * its own with its own Redis connections answers {"pattern", "data":
 * {"token"}, "id"} on <pattern>.reply with {"id", "response",
 * "isDisposed": true}; the checks are auth_check_token's.  rpc_parse is the
 * envelope parser, pure: RPC_OK (id and token), RPC_NO_TOKEN (answer
 * {"valid": false}) or RPC_DROP (*why says which rule).
 */
#define RPC_ID_MAX		128	/* bytes of the id as JSON text */
#define RPC_MSG_MAX		(FA_TOKEN_MAX + 1024)	/* bytes of a request */
#define RPC_BATCH_MAX		256	/* requests read per round */
#define RPC_CLAIM_TTL		30	/* s: fa:rpc:<id> keeps others quiet */
#define RPC_CLAIM_PREFIX	"fa:rpc:"
#define RPC_REPLY_SUFFIX	".reply"
#define RPC_PATTERN_MAX		200	/* rpc_validate_pattern bytes */
#define RPC_POLL_MS		25	/* longest wait for requests: a stop
					   is seen within this */
#define RPC_PING_MS		1000	/* heartbeat on the subscription */
#define RPC_DEAD_MS		3000	/* no PONG this long: reconnect */
#define RPC_BACKOFF_MIN_MS	50	/* reconnect backoff, doubling */
#define RPC_BACKOFF_MAX_MS	2000
#define RPC_LOG_EVERY_MS	10000	/* one drop line per this, with count */
#define RPC_NICE		10	/* the responder yields to workers */
enum rpc_parse {
	RPC_OK,
	RPC_NO_TOKEN,
	RPC_DROP
};
struct rpc_req {
	char		 id[RPC_ID_MAX + 1];	/* JSON text: "\"abc\"" or 42 */
	const char	*token;		/* into the parsed JSON; NULL: none */
	size_t		 toklen;
};
/* *root (owned, json_decref) keeps token alive; set whenever not DROP. */
enum rpc_parse	 rpc_parse(const char *msg, size_t len, struct rpc_req *,
		    json_t **root, const char **why);
/* The answer for claims (NULL: {"valid": false}), a new reference. */
json_t		*rpc_answer(const struct claims *);
int		 rpc_init(void);	/* no-op when off */
void		 rpc_shutdown(void);

#endif /* FA_RPC_H */
