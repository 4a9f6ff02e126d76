/*
 * A user's roles, kept comma-joined ("user,admin") in struct user and
 * struct claims and shown as a JSON array.  Pure: no I/O; the names are
 * checked by validate_role ([a-z][a-z0-9_-]{0,31}).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "extern.h"

/* The next name of csv at *p (advanced past it and its comma); 0 at the end. */
int
roles_next(const char **p, const char **name, size_t *len)
{
	while (**p == ',')
		(*p)++;
	if (**p == '\0')
		return 0;
	*name = *p;
	*len = strcspn(*p, ",");
	*p += *len;
	return 1;
}

int
roles_has(const char *csv, const char *role)
{
	const char	*p = csv, *name;
	size_t		 len, n = strlen(role);

	while (roles_next(&p, &name, &len))
		if (len == n && strncmp(name, role, n) == 0)
			return 1;
	return 0;
}

json_t *
roles_json(const char *csv)
{
	json_t		*a = json_array();
	const char	*p = csv, *name;
	size_t		 len;

	while (a != NULL && roles_next(&p, &name, &len))
		json_array_append_new(a, json_stringn(name, len));
	return a;
}

/* Append name to csv (sz bytes) unless it is there; -1 if it would not fit. */
static int
roles_append(char *csv, size_t sz, const char *name, size_t len)
{
	size_t	 n = strlen(csv);
	char	 one[FA_ROLE_MAX + 1];

	if (len > FA_ROLE_MAX)
		return -1;
	memcpy(one, name, len);
	one[len] = '\0';
	if (roles_has(csv, one))
		return 0;
	if (n + (n > 0) + len >= sz)
		return -1;
	snprintf(csv + n, sz - n, "%s%s", n > 0 ? "," : "", one);
	return 0;
}

int
roles_from_json(const json_t *arr, int flags, char *out, size_t sz)
{
	const json_t	*v;
	const char	*s;
	size_t		 i, len, n;

	out[0] = '\0';
	if (!json_is_array(arr) || json_array_size(arr) > FA_ROLES_MAX)
		return -1;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			goto fail;
		s = json_string_value(v);
		len = json_string_length(v);
		if (validate_role(s, len) == -1)
			goto fail;
		if (flags & ROLES_DEDUP) {
			if (roles_append(out, sz, s, len) == -1)
				goto fail;
			continue;
		}
		n = strlen(out);
		if (n + (n > 0) + len >= sz)
			goto fail;
		if (n > 0)
			out[n++] = ',';
		memcpy(out + n, s, len);
		out[n + len] = '\0';
	}
	return 0;
fail:
	out[0] = '\0';
	return -1;
}

int
roles_edit(char *csv, size_t sz, const char *role, int add)
{
	char		 out[FA_ROLES_LEN] = "";
	const char	*p = csv, *name;
	size_t		 len, n = 0, rlen = strlen(role);

	while (roles_next(&p, &name, &len)) {
		if (!add && len == rlen && strncmp(name, role, len) == 0)
			continue;
		if (roles_append(out, sizeof(out), name, len) == -1)
			return -1;
		n++;
	}
	if (add && !roles_has(out, role)) {
		if (n >= FA_ROLES_MAX ||
		    roles_append(out, sizeof(out), role, rlen) == -1)
			return -1;
	}
	if (strlen(out) >= sz)
		return -1;
	snprintf(csv, sz, "%s", out);
	return 0;
}
