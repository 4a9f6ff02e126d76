/*
 * The mails of the account lifecycle, built in memory.  Templates
 * (mail_template_dir/<kind>.txt: "Subject: ..." then a blank line and the
 * body) belong to a configuration generation: mail_init reads the boot
 * one's, a reload reads them again into the next (reload_load), so a
 * request renders with the templates of the generation it holds and a
 * template dir that does not load refuses the reload.  Everything else is
 * pure, so the unit tests and fuzzers call it directly.  No header is ever
 * made of client bytes that could carry CR or LF: header values pass
 * mail_header_value, which keeps visible ASCII and turns the rest into RFC
 * 2047 encoded-words.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "extern.h"

static const char *const mail_kinds[MAIL__MAX] = {
	"reset", "verify", "email-change", "email-changed"
};

struct mail_templates {
	char	*subject[MAIL__MAX];
	char	*body[MAIL__MAX];
};

static struct {
	struct config	*boot;	/* whose templates mail_shutdown frees */
} ml;

const char *
mail_kind_name(enum mail_kind k)
{
	if ((int)k < 0 || k >= MAIL__MAX)
		return "unknown";
	return mail_kinds[k];
}

int
mail_enabled(void)
{
	const struct config	*c = cfg;

	return c != NULL && c->smtp_url[0] != '\0' && c->mail != NULL;
}

/* A growing buffer; xrealloc never fails. */
struct buf {
	char	*p;
	size_t	 len, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

char *
mail_render(const char *tmpl, const struct mail_var *vars, size_t nvars)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*p = tmpl, *open, *close;
	size_t		 i, n;

	buf_add(&b, "", 0);
	while ((open = strchr(p, '{')) != NULL) {
		buf_add(&b, p, (size_t)(open - p));
		close = strchr(open + 1, '}');
		n = close != NULL ? (size_t)(close - open - 1) : 0;
		for (i = 0; close != NULL && i < nvars; i++)
			if (strlen(vars[i].name) == n &&
			    strncmp(vars[i].name, open + 1, n) == 0)
				break;
		if (close == NULL || i == nvars) {
			buf_add(&b, "{", 1);	/* not ours: kept as is */
			p = open + 1;
			continue;
		}
		buf_str(&b, vars[i].value != NULL ? vars[i].value : "");
		p = close + 1;
	}
	buf_str(&b, p);
	return b.p;
}

static int
visible_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* Bytes of s that fit in one encoded-word, not cutting a character. */
static size_t
word_cut(const char *s, size_t left)
{
	size_t	 n = left < MAIL_WORD_BYTES ? left : MAIL_WORD_BYTES;

	while (n < left && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

char *
mail_header_value(const char *in)
{
	struct buf	 b = { NULL, 0, 0 };
	char		*clean, enc[sodium_base64_ENCODED_LEN(MAIL_WORD_BYTES,
			    sodium_base64_VARIANT_ORIGINAL)];
	size_t		 len, i, n;

	/* control characters (CR, LF, tab, ...) become U+FFFD, then spaces */
	clean = text_clean_dup(in != NULL ? in : "", MAIL_LINE_MAX);
	len = strlen(clean);
	for (i = 0; i < len; i++)
		if (clean[i] == '\t')
			clean[i] = ' ';
	buf_add(&b, "", 0);
	if (visible_ascii(clean)) {
		buf_str(&b, clean);
		free(clean);
		return b.p;
	}
	for (i = 0; i < len; i += n) {
		n = word_cut(clean + i, len - i);
		sodium_bin2base64(enc, sizeof(enc),
		    (const unsigned char *)clean + i, n,
		    sodium_base64_VARIANT_ORIGINAL);
		if (i > 0)
			buf_str(&b, "\r\n ");
		buf_str(&b, "=?UTF-8?B?");
		buf_str(&b, enc);
		buf_str(&b, "?=");
	}
	free(clean);
	return b.p;
}

int
mail_template_split(const char *text, char **subject, char **body)
{
	const char	*end, *p;

	*subject = *body = NULL;
	if (strncmp(text, "Subject:", 8) != 0)
		return -1;
	p = text + 8;
	p += strspn(p, " ");
	if ((end = strchr(p, '\n')) == NULL)
		return -1;
	*subject = xstrndup(p, (size_t)(end - p));
	if ((*subject)[0] != '\0' &&
	    (*subject)[strlen(*subject) - 1] == '\r')
		(*subject)[strlen(*subject) - 1] = '\0';
	p = end + 1;
	if (*p == '\r')
		p++;
	if (*p == '\n')
		p++;
	*body = xstrdup(p);
	return 0;
}

/* 1 when a line of body is longer than SMTP allows. */
static int
long_lines(const char *body)
{
	size_t	 n;

	for (;;) {
		n = strcspn(body, "\n");
		if (n > MAIL_LINE_MAX - 2)
			return 1;
		if (body[n] == '\0')
			return 0;
		body += n + 1;
	}
}

/* The body with CRLF line ends, 8bit or quoted-printable (qp). */
static void
body_add(struct buf *b, const char *body, int qp)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char		 e[4];
	size_t		 col = 0;

	for (p = (const unsigned char *)body; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			buf_add(b, "\r\n", 2);
			col = 0;
			continue;
		}
		if (!qp) {
			buf_add(b, (const char *)p, 1);
			continue;
		}
		if (col >= 72) {
			buf_add(b, "=\r\n", 3);
			col = 0;
		}
		if ((*p >= 33 && *p <= 126 && *p != '=') || (*p == ' ' &&
		    p[1] != '\n' && p[1] != '\r' && p[1] != '\0')) {
			buf_add(b, (const char *)p, 1);
			col++;
		} else {
			e[0] = '=';
			e[1] = hex[*p >> 4];
			e[2] = hex[*p & 15];
			buf_add(b, e, 3);
			col += 3;
		}
	}
	if (b->len < 2 || strcmp(b->p + b->len - 2, "\r\n") != 0)
		buf_add(b, "\r\n", 2);
}

char *
mail_compose(const char *from, const char *to, const char *subject,
    const char *body, long long ms)
{
	struct buf	 b = { NULL, 0, 0 };
	unsigned char	 rnd[MAIL_MSGID_BYTES];
	char		 date[64], id[2 * MAIL_MSGID_BYTES + 1], *v;
	const char	*dom;
	struct tm	 tm;
	time_t		 t = (time_t)(ms / 1000);
	int		 qp = long_lines(body);

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
	dom = strrchr(from, '@');
	dom = dom != NULL ? dom + 1 : "localhost";

	buf_add(&b, "", 0);
	buf_str(&b, "Date: ");
	buf_str(&b, date);
	buf_str(&b, "\r\nMessage-ID: <");
	buf_str(&b, id);
	buf_str(&b, "@");
	v = mail_header_value(dom);
	buf_str(&b, v);
	free(v);
	buf_str(&b, ">\r\nFrom: <");
	v = mail_header_value(from);
	buf_str(&b, v);
	free(v);
	buf_str(&b, ">\r\nTo: <");
	v = mail_header_value(to);
	buf_str(&b, v);
	free(v);
	buf_str(&b, ">\r\nSubject: ");
	v = mail_header_value(subject);
	buf_str(&b, v);
	free(v);
	buf_str(&b, "\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: ");
	buf_str(&b, qp ? "quoted-printable" : "8bit");
	buf_str(&b, "\r\n\r\n");
	body_add(&b, body, qp);
	return b.p;
}

char *
mail_link(enum mail_kind k, const char *token)
{
	struct mail_var	 v[1] = { { "token", token } };
	const char	*url = k == MAIL_RESET ? cfg->reset_url : cfg->verify_url;
	char		*tmpl, *out;

	if (url[0] != '\0')
		return mail_render(url, v, 1);
	xasprintf(&tmpl, "%s/%s?token={token}", cfg->public_url,
	    k == MAIL_RESET ? "reset-password" : "verify-email");
	out = mail_render(tmpl, v, 1);
	free(tmpl);
	return out;
}

char *
mail_build(enum mail_kind k, const char *rcpt, const struct mail_var *vars,
    size_t nvars)
{
	const struct config	*c = cfg;
	char			*subject, *body, *msg;

	if (c->smtp_url[0] == '\0' || c->mail == NULL || (int)k < 0 ||
	    k >= MAIL__MAX)
		return NULL;
	subject = mail_render(c->mail->subject[k], vars, nvars);
	body = mail_render(c->mail->body[k], vars, nvars);
	msg = mail_compose(c->mail_from, rcpt, subject, body, now_ms());
	free(subject);
	free(body);
	return msg;
}

static int
mail_load(struct mail_templates *t, const char *dir, enum mail_kind k,
    char **errstr)
{
	char	*path, *text = NULL;
	size_t	 n = 0;
	int	 rc = -1;

	xasprintf(&path, "%s/%s.txt", dir, mail_kinds[k]);
	if (file_read(path, MAIL_TEMPLATE_MAX, &text, &n) == -1 &&
	    errno != EFBIG) {
		xasprintf(errstr, "mail_template_dir: cannot read %s", path);
		free(path);
		return -1;
	}
	if (text == NULL || strlen(text) != n ||
	    validate_utf8(text, n) == -1 || mail_template_split(text,
	    &t->subject[k], &t->body[k]) == -1) {
		xasprintf(errstr, "%s: expected UTF-8 text of at most %d "
		    "bytes, starting with a Subject: line", path,
		    MAIL_TEMPLATE_MAX);
		goto out;
	}
	rc = 0;
out:
	free(text);
	free(path);
	return rc;
}

void
mail_templates_free(struct config *c)
{
	int	 k;

	if (c == NULL || c->mail == NULL)
		return;
	for (k = 0; k < MAIL__MAX; k++) {
		free(c->mail->subject[k]);
		free(c->mail->body[k]);
	}
	free(c->mail);
	c->mail = NULL;
}

int
mail_templates_load(struct config *c, char **errstr)
{
	int	 k;

	*errstr = NULL;
	mail_templates_free(c);
	if (c->smtp_url[0] == '\0')
		return 0;
	c->mail = xcalloc(1, sizeof(*c->mail));
	for (k = 0; k < MAIL__MAX; k++)
		if (mail_load(c->mail, c->mail_template_dir, k,
		    errstr) == -1) {
			mail_templates_free(c);
			return -1;
		}
	return 0;
}

int
mail_init(struct config *c, char **errstr)
{
	mail_shutdown();
	if (mail_templates_load(c, errstr) == -1)
		return -1;
	if (c->smtp_url[0] == '\0')
		log_info(NULL, "mail: no smtp_url; reset, verification and "
		    "email change mails are not sent");
	ml.boot = c;
	return 0;
}

void
mail_shutdown(void)
{
	mail_templates_free(ml.boot);
	ml.boot = NULL;
}
