/* Mail templates, header encoding and message composition (mail.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

/* The config's strings are char *: the tests lend it literals, never freed. */
static char *
mut(const char *s)
{
	return (char *)(uintptr_t)s;
}


struct config	*cfg;

static void
render_replaces_known_placeholders(void **state)
{
	struct mail_var	 v[3] = { { "link", "https://x/r?token=abc" },
	    { "email", "a@b.example" }, { "ttl_minutes", "60" } };
	char		*s;

	(void)state;
	s = mail_render("Open {link} within {ttl_minutes} minutes, {email}.",
	    v, 3);
	assert_string_equal(s, "Open https://x/r?token=abc within 60 minutes, "
	    "a@b.example.");
	free(s);
}

static void
render_keeps_unknown_and_unclosed(void **state)
{
	struct mail_var	 v[1] = { { "link", "L" } };
	char		*s;

	(void)state;
	s = mail_render("{nope} {link} { {link", v, 1);
	assert_string_equal(s, "{nope} L { {link");
	free(s);
	s = mail_render("", v, 1);
	assert_string_equal(s, "");
	free(s);
	/* a value is not rendered again: no placeholder injection */
	v[0].value = "{link}";
	s = mail_render("{link}", v, 1);
	assert_string_equal(s, "{link}");
	free(s);
}

static void
header_ascii_as_is(void **state)
{
	char	*s;

	(void)state;
	s = mail_header_value("Reset your password");
	assert_string_equal(s, "Reset your password");
	free(s);
}

static void
header_crlf_never_a_header(void **state)
{
	char	*s, *p;

	(void)state;
	s = mail_header_value("Hi\r\nBcc: victim@example.com");
	/* no bare CR or LF: only the folding of encoded-words */
	assert_null(strstr(s, "\r\nBcc"));
	assert_null(strstr(s, "\nBcc"));
	assert_non_null(strstr(s, "=?UTF-8?B?"));
	free(s);
	s = mail_header_value("a\nb\rc");
	for (p = s; (p = strchr(p, '\n')) != NULL; p++)
		assert_true(p > s && p[-1] == '\r' && p[1] == ' ');
	assert_null(strstr(s, "\r\r"));
	free(s);
}

static void
header_utf8_encoded_words(void **state)
{
	char	*s, *p;

	(void)state;
	s = mail_header_value("Passwort zurücksetzen");
	assert_string_equal(s, "=?UTF-8?B?UGFzc3dvcnQgenVyw7xja3NldHplbg==?=");
	free(s);
	/* long text: several words, folded, none cuts a character */
	s = mail_header_value("ééééééééééééééééééééééééééééééééééééééééé");
	assert_non_null((p = strstr(s, "?=\r\n =?UTF-8?B?")));
	free(s);
}

static void
template_split(void **state)
{
	char	*subj, *body;

	(void)state;
	assert_int_equal(mail_template_split("Subject: Hi {email}\n\nBody\n",
	    &subj, &body), 0);
	assert_string_equal(subj, "Hi {email}");
	assert_string_equal(body, "Body\n");
	free(subj);
	free(body);
	assert_int_equal(mail_template_split("Body only\n", &subj, &body), -1);
	assert_null(subj);
}

static void
compose_has_every_header(void **state)
{
	char	*m;

	(void)state;
	m = mail_compose("noreply@auth.example", "u@b.example",
	    "Subject\r\nBcc: x@y", "line one\nline two\n", 0);
	assert_non_null(strstr(m, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
	assert_non_null(strstr(m, "@auth.example>\r\n"));
	assert_non_null(strstr(m, "Message-ID: <"));
	assert_non_null(strstr(m, "From: <noreply@auth.example>\r\n"));
	assert_non_null(strstr(m, "To: <u@b.example>\r\n"));
	assert_non_null(strstr(m, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(m,
	    "Content-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(strstr(m, "Content-Transfer-Encoding: 8bit\r\n"));
	assert_null(strstr(m, "\r\nBcc:"));
	assert_non_null(strstr(m, "\r\n\r\nline one\r\nline two\r\n"));
	free(m);
}

static void
compose_long_line_quoted_printable(void **state)
{
	char	 body[2100], *m, *b;

	(void)state;
	memset(body, 'x', 2000);
	memcpy(body + 2000, " =\xc3\xa9\n", 6);
	m = mail_compose("a@b.c", "d@e.f", "s", body, 0);
	assert_non_null(strstr(m,
	    "Content-Transfer-Encoding: quoted-printable\r\n"));
	b = strstr(m, "\r\n\r\n") + 4;
	assert_non_null(strstr(b, "=\r\n"));	/* soft breaks */
	assert_non_null(strstr(b, "=3D=C3=A9\r\n"));
	for (; *b != '\0'; b += strcspn(b, "\n") + (b[strcspn(b, "\n")] != 0))
		assert_true(strcspn(b, "\n") <= 78);
	free(m);
}

static void
once_tokens_roundtrip_and_strict(void **state)
{
	struct config	 c;
	struct once	 a, b;
	char		*sealed, *open;
	size_t		 len;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.jwt_secret = mut("0123456789abcdef0123456789abcdef");
	c.jwt_secret_len = strlen(c.jwt_secret);
	assert_int_equal(once_init(&c), 0);
	once_new(&a);
	assert_int_equal(strlen(a.text), ONCE_LEN);
	assert_int_equal(strlen(a.hash), FA_HASH_HEX);
	assert_null(strstr(a.hash, a.text));
	assert_int_equal(once_parse(&b, a.text, strlen(a.text)), 0);
	assert_string_equal(a.hash, b.hash);
	once_new(&b);
	assert_string_not_equal(a.text, b.text);
	assert_int_equal(once_parse(&b, a.text, ONCE_LEN - 1), -1);
	assert_int_equal(once_parse(&b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    ONCE_LEN), -1);
	assert_int_equal(once_parse(&b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
	    ONCE_LEN), -1);
	/* the seal opens to the message, and not once altered */
	assert_int_equal(once_seal(&sealed, "a message", 9), 0);
	assert_null(strstr(sealed, "message"));
	assert_int_equal(once_open(&open, &len, sealed), 0);
	assert_int_equal(len, 9);
	assert_string_equal(open, "a message");
	free(open);
	sealed[strlen(sealed) - 1] = sealed[strlen(sealed) - 1] == '0' ?
	    '1' : '0';
	assert_int_equal(once_open(&open, &len, sealed), -1);
	assert_null(open);
	free(sealed);
	once_shutdown();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(render_replaces_known_placeholders),
		cmocka_unit_test(render_keeps_unknown_and_unclosed),
		cmocka_unit_test(header_ascii_as_is),
		cmocka_unit_test(header_crlf_never_a_header),
		cmocka_unit_test(header_utf8_encoded_words),
		cmocka_unit_test(template_split),
		cmocka_unit_test(compose_has_every_header),
		cmocka_unit_test(compose_long_line_quoted_printable),
		cmocka_unit_test(once_tokens_roundtrip_and_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
