/* roles.c: membership, the JSON array both ways, add and remove. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static json_t *
arr(const char *text)
{
	json_error_t	 e;
	json_t		*j = json_loads(text, 0, &e);

	assert_non_null(j);
	return j;
}

static void
membership_is_by_whole_name(void **state)
{
	(void)state;
	assert_string_equal(FA_ROLE_PATTERN, "[a-z][a-z0-9_-]{0,31}");
	assert_true(roles_has("user,admin", "admin"));
	assert_true(roles_has("user,admin", "user"));
	assert_false(roles_has("user,admin", "adm"));
	assert_false(roles_has("user,administrator", "admin"));
	assert_false(roles_has("", "admin"));
	assert_false(roles_has("user", ""));
	assert_true(roles_has(",,user,", "user"));
}

static void
csv_becomes_an_array_without_empty_names(void **state)
{
	json_t	*j;
	char	*s;

	(void)state;
	j = roles_json("user,admin");
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "[\"user\",\"admin\"]");
	free(s);
	json_decref(j);
	j = roles_json("");
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	j = roles_json(",a,,b,");
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "[\"a\",\"b\"]");
	free(s);
	json_decref(j);
}

static void
array_becomes_csv_only_when_every_name_is_valid(void **state)
{
	char	 out[FA_ROLES_LEN];
	json_t	*j;
	char	 big[1024];
	size_t	 i, n;

	(void)state;
	j = arr("[\"user\",\"admin\",\"user\"]");
	assert_int_equal(roles_from_json(j, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "user,admin,user");
	assert_int_equal(roles_from_json(j, ROLES_DEDUP, out, sizeof(out)),
	    0);
	assert_string_equal(out, "user,admin");
	json_decref(j);
	j = arr("[]");
	assert_int_equal(roles_from_json(j, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	json_decref(j);
	j = arr("[\"Admin\"]");
	assert_int_equal(roles_from_json(j, 0, out, sizeof(out)), -1);
	assert_string_equal(out, "");
	json_decref(j);
	j = arr("[1]");
	assert_int_equal(roles_from_json(j, 0, out, sizeof(out)), -1);
	json_decref(j);
	j = arr("[\"a,b\"]");
	assert_int_equal(roles_from_json(j, 0, out, sizeof(out)), -1);
	json_decref(j);
	j = arr("{\"a\":1}");
	assert_int_equal(roles_from_json(j, 0, out, sizeof(out)), -1);
	json_decref(j);
	assert_int_equal(roles_from_json(NULL, 0, out, sizeof(out)), -1);
	/* FA_ROLES_MAX names of the longest length fit; one more does not */
	for (n = 0; n <= FA_ROLES_MAX; n++) {
		big[0] = '[';
		big[1] = '\0';
		for (i = 0; i < n; i++)
			snprintf(big + strlen(big), sizeof(big) - strlen(big),
			    "%s\"%c%031zu\"", i ? "," : "", 'a', i);
		strcat(big, "]");
		j = arr(big);
		assert_int_equal(roles_from_json(j, ROLES_DEDUP, out,
		    sizeof(out)), n <= FA_ROLES_MAX ? 0 : -1);
		assert_int_equal(roles_from_json(j, 0, out, sizeof(out)),
		    n <= FA_ROLES_MAX ? 0 : -1);
		json_decref(j);
	}
	j = arr("[\"\\u00e9\"]");
	assert_int_equal(roles_from_json(j, 0, out, sizeof(out)), -1);
	json_decref(j);
}

static void
edit_adds_once_and_removes_every_copy(void **state)
{
	char	 r[FA_ROLES_LEN];
	char	 name[8];
	int	 i;

	(void)state;
	snprintf(r, sizeof(r), "user");
	assert_int_equal(roles_edit(r, sizeof(r), "admin", 1), 0);
	assert_string_equal(r, "user,admin");
	assert_int_equal(roles_edit(r, sizeof(r), "admin", 1), 0);
	assert_string_equal(r, "user,admin");
	assert_int_equal(roles_edit(r, sizeof(r), "user", 0), 0);
	assert_string_equal(r, "admin");
	assert_int_equal(roles_edit(r, sizeof(r), "nobody", 0), 0);
	assert_string_equal(r, "admin");
	assert_int_equal(roles_edit(r, sizeof(r), "admin", 0), 0);
	assert_string_equal(r, "");
	for (i = 0; i < FA_ROLES_MAX; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(roles_edit(r, sizeof(r), name, 1), 0);
	}
	assert_int_equal(roles_edit(r, sizeof(r), "one-more", 1), -1);
	/* a full list still takes a role it has, and gives one up */
	assert_int_equal(roles_edit(r, sizeof(r), "r0", 1), 0);
	assert_int_equal(roles_edit(r, sizeof(r), "r0", 0), 0);
	assert_false(roles_has(r, "r0"));
	assert_int_equal(roles_edit(r, sizeof(r), "one-more", 1), 0);
	assert_true(roles_has(r, "one-more"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(membership_is_by_whole_name),
		cmocka_unit_test(csv_becomes_an_array_without_empty_names),
		cmocka_unit_test(array_becomes_csv_only_when_every_name_is_valid),
		cmocka_unit_test(edit_adds_once_and_removes_every_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
