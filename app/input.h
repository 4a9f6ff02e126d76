/*
 * Pure checks of client input: validate.c, email.c, text.c, csv.c,
 * hashfmt.c; included at the end of extern.h, after every type it uses.
 */
#ifndef FA_INPUT_H
#define FA_INPUT_H

/*
 * validate.c: pure checks of client input, and the one path that checks
 * a JSON body or a query string against a route's declared fields.
 */
#define VALIDATE_WHY_REQUIRED	"is required"
#define VALIDATE_WHY_STRING	"must be a string"
/* a password to check (login, account deletion) */
#define VALIDATE_WHY_SECRET	"is required and must be a string of at " \
				"most " FA_STR(FA_PASSWORD_MAX) " bytes"
enum field_kind {
	FIELD_STRING,		/* any string */
	FIELD_SECRET,		/* a password to check: at most
				   FA_PASSWORD_MAX bytes, nothing else */
	FIELD_PASSWORD,		/* a new password: validate_password */
	FIELD_EMAIL,		/* email_canon: v->email */
	FIELD_NAME,		/* validate_name; null or "" is absent */
	FIELD__MAX
};
#define FIELD_REQUIRED		0x01
struct field_spec {
	const char	*name;
	enum field_kind	 kind;
	int		 flags;
	const char	*why_missing;	/* NULL: VALIDATE_WHY_REQUIRED */
	const char	*why_type;	/* not a string, too long; NULL:
					   VALIDATE_WHY_STRING */
};
struct field_value {
	const char	*s;	/* NULL: absent; borrowed from the body */
	size_t		 len;
	char		 email[FA_EMAIL_MAX + 1];	/* FIELD_EMAIL */
};
#define VALIDATE_FIRST		0x01	/* stop at the first field refused */
/*
 * Check body against spec[0..n) into v[0..n): first the presence and type
 * of every field, then the values (policy, canonical email, ...).  Each
 * refused field is named in fields with its reason.  0, or -1.
 */
int		 validate_fields(const json_t *body, const struct field_spec *,
		    size_t n, int flags, struct field_value *v,
		    json_t *fields);
enum param_kind {
	PARAM_UUID,
	PARAM_NAME,		/* [a-z0-9._]+ */
	PARAM_NUMBER,		/* decimal digits, from min to max */
	PARAM__MAX
};
#define PARAM_VALUE_MAX		64	/* longest value looked at */
#define PARAM_NUMBER_MAX	23	/* digits of a number looked at */
struct param_spec {
	const char	*name;
	enum param_kind	 kind;
	size_t		 maxlen;	/* longer is malformed; at most
					   PARAM_VALUE_MAX */
	long long	 min, max;	/* PARAM_NUMBER */
	const char	*why;		/* malformed, repeated or too long */
};
struct param_value {
	int		 present;
	char		 s[PARAM_VALUE_MAX + 1];
	long long	 n;		/* PARAM_NUMBER */
};
/* The same for query parameters; each may appear once. */
int		 validate_params(const struct request *,
		    const struct param_spec *, size_t n,
		    struct param_value *v, json_t *fields);
int		 validate_password(const char *in, size_t len, const char **why);
int		 validate_name(const char *in, size_t len, const char **why);
int		 validate_role(const char *in, size_t len);
int		 validate_utf8(const char *in, size_t len);
/* Parse one JSON object; -1 for anything else (dup keys, NUL, bad UTF-8). */
json_t		*json_parse_object(const char *buf, size_t len);

/*
 * email.c: the canonical email of API.md (see email.c).  0 and the
 * canonical form in out, or -1 with *why a short reason for the client.
 * Pure: no I/O.
 */
#define EMAIL_IN_MAX		1024	/* bytes looked at, after the trim */
#define EMAIL_LOCAL_MAX		64	/* RFC 5321 local part */
#define EMAIL_LABEL_MAX		63	/* a DNS label */
int		 email_canon(const char *in, size_t len,
		    char out[FA_EMAIL_MAX + 1], const char **why);

/*
 * text.c: client text that is stored or shown again (user agents, names),
 * cleaned: invalid UTF-8, C0, DEL, C1, U+2028/9 become U+FFFD; at most
 * outsz-1 bytes (cut at a character) and a NUL.  Returns the length.
 * text_clean_dup: the same into an owned copy of at most max bytes; NULL
 * for NULL.
 */
size_t		 text_clean(char *out, size_t outsz, const char *in,
		    size_t len);
char		*text_clean_dup(const char *in, size_t max);

/*
 * csv.c: RFC 4180 records from memory.  csv_next parses the record at
 * buf[*off], advancing *off and *line (lines consumed, quoted line breaks
 * included): 1 a record in *r (caller frees with csv_record_free), 0 the
 * end, -1 malformed (*why says how, r->line where the record starts).
 */
#define CSV_FIELD_MAX		8192	/* bytes of one field */
#define CSV_FIELDS_MAX		64	/* fields of one record */
#define CSV_RECORD_MAX		65536	/* bytes of one record */
struct csv_record {
	char		**field;	/* owned, NUL-terminated */
	size_t		 nfield;
	size_t		 line;		/* 1-based line the record starts on */
};
int		 csv_next(const char *buf, size_t len, size_t *off,
		    size_t *line, struct csv_record *r, const char **why);
void		 csv_record_free(struct csv_record *);

/*
 * hashfmt.c: could a stored hash ever verify?  bcrypt $2a$/$2b$/$2y$ (cost,
 * 53 characters, canonical) or an Argon2id PHC string within the bounds
 * below; HASHFMT_BAD (and *why) for anything else.
 */
enum hashfmt {
	HASHFMT_BAD = -1,
	HASHFMT_BCRYPT,
	HASHFMT_ARGON2ID
};
#define HASHFMT_BCRYPT_LEN	60
#define HASHFMT_BCRYPT_COST_MIN	4
#define HASHFMT_BCRYPT_COST_MAX	31
#define HASHFMT_ARGON2ID_PREFIX	"$argon2id$"
/* costs beyond these would stall the hash pool at the first login */
#define HASHFMT_ARGON2_M_MAX	(1024 * 1024)	/* KiB: 1 GiB */
#define HASHFMT_ARGON2_T_MAX	16	/* passes */
#define HASHFMT_ARGON2_P_MAX	16	/* lanes (libsodium runs them all) */
#define HASHFMT_ARGON2_SALT_MIN	8	/* bytes, Argon2's minimum */
#define HASHFMT_ARGON2_SALT_MAX	64
#define HASHFMT_ARGON2_OUT_MIN	16	/* bytes, libsodium's minimum */
#define HASHFMT_ARGON2_OUT_MAX	64
int		 hashfmt_check(const char *h, size_t len, const char **why);

#endif /* FA_INPUT_H */
