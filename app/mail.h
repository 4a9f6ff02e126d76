/*
 * once.c, mail.c, mailer.c: one-time tokens, the mails and their sender;
 * included at the end of extern.h, after every type it uses.
 */
#ifndef FA_MAIL_H
#define FA_MAIL_H

/*
 * once.c: one-time tokens of the account lifecycle: ONCE_BYTES random
 * bytes as base64url, kept only as a keyed BLAKE2b hash (hex); and the
 * seal of queued mail (secretbox, hex).  Keys are derived from jwt_secret
 * by once_init, before any thread starts.
 */
#define ONCE_BYTES		32	/* 256 random bits */
#define ONCE_LEN		43	/* base64url of ONCE_BYTES */
#define ONCE_CTX_HASH		"fcgi-auth one-time-hash v1"
#define ONCE_CTX_MAIL		"fcgi-auth mail-seal v1"
struct once {
	char		 text[ONCE_LEN + 1];
	char		 hash[FA_HASH_HEX + 1];
};
int		 once_init(const struct config *);
void		 once_shutdown(void);
void		 once_new(struct once *);
/* 0 and the hash, or -1: not ONCE_BYTES of base64url. */
int		 once_parse(struct once *, const char *text, size_t len);
int		 once_seal(char **out, const char *in, size_t len);
/* *out owned, NUL-terminated. */
int		 once_open(char **out, size_t *len, const char *hex);

/*
 * mail.c: the mails, built in memory (pure but for mail_init reading the
 * templates).  A template file is "Subject: ..." then a blank line and the
 * body; {name} placeholders are replaced, unknown ones kept.  Header values
 * are visible ASCII or RFC 2047 encoded-words: no CR or LF can reach a
 * header.  The body goes out as 8bit, or quoted-printable when a line is
 * too long for SMTP.
 */
enum mail_kind {
	MAIL_RESET,
	MAIL_VERIFY,
	MAIL_EMAIL_CHANGE,	/* to the new address, with the token */
	MAIL_EMAIL_CHANGED,	/* notice to the old address */
	MAIL__MAX
};
#define MAIL_TEMPLATE_MAX	16384	/* bytes of a template file */
#define MAIL_LINE_MAX		998	/* RFC 5322 line length */
#define MAIL_WORD_BYTES		45	/* bytes of text per encoded-word */
#define MAIL_MSGID_BYTES	16
struct mail_var {
	const char	*name;		/* without braces */
	const char	*value;
};
/* Boot: the templates of c, freed by mail_shutdown. */
int		 mail_init(struct config *, char **errstr);
void		 mail_shutdown(void);
/* A reloaded generation's: read mail_template_dir into c->mail when
 * smtp_url is set (-1 and *errstr owned: the reload is refused). */
int		 mail_templates_load(struct config *, char **errstr);
void		 mail_templates_free(struct config *);
int		 mail_enabled(void);	/* smtp_url and templates in cfg */
const char	*mail_kind_name(enum mail_kind);	/* template file name */
char		*mail_render(const char *tmpl, const struct mail_var *,
		    size_t nvars);
char		*mail_header_value(const char *in);
/* "Subject: x\n\nbody": 0 and owned subject/body, -1 malformed */
int		 mail_template_split(const char *text, char **subject,
		    char **body);
char		*mail_compose(const char *from, const char *to,
		    const char *subject, const char *body, long long ms);
/* The message of kind to rcpt, rendered and composed; NULL: no mailer. */
char		*mail_build(enum mail_kind, const char *rcpt,
		    const struct mail_var *, size_t nvars);
/* The link of a token: reset_url or verify_url with {token} replaced. */
char		*mail_link(enum mail_kind, const char *token);

/*
 * mailer.c: one thread sends the queue over SMTP (libcurl), woken by a
 * NOTIFY on fa_mail (db_listen_*) or every MAILER_POLL_MS; never on a
 * request's path.  Temporary failures are retried, the first after
 * mail_retry_min_seconds, then doubling up to MAILER_BACKOFF_MAX_S, for
 * mail_retry_hours; a 5xx answer drops the mail with an audit row.
 */
#define MAILER_POLL_MS		1000
#define MAILER_BATCH		20
#define MAILER_BACKOFF_MAX_S	3600
#define MAILER_LEASE_SLACK_S	30	/* past smtp_timeout_ms */
int		 mailer_init(void);
void		 mailer_shutdown(void);
int		 mailer_probe(char *err, size_t errsz);	/* doctor */

#endif /* FA_MAIL_H */
