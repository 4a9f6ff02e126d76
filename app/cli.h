/*
 * cli.h: the operator commands main.c runs (cli_*.c), each with its
 * usage text; they print results on stdout, errors on stderr, and return
 * the exit status (fcgi-auth(8), EXIT STATUS).
 */
#ifndef FA_CLI_H
#define FA_CLI_H

int		 cli_user(int, char **);
extern const char cli_user_usage[];
int		 cli_import(int, char **);
extern const char cli_import_usage[];
int		 cli_outbox(int, char **);
extern const char cli_outbox_usage[];
int		 cli_audit(int, char **);

/*
 * cli_doctor.c: fcgi-auth doctor, one line per check (backends, schema,
 * clock, secret files); 1 when one failed.  main.c's --config path.
 */
extern const char *config_path;
int		 cli_doctor(int, char **);
#define DOCTOR_LINE_MAX		1024	/* one line of output */
#define DOCTOR_SKEW_WARN	2	/* seconds of clock skew: warn */
#define DOCTOR_SKEW_FAIL	30	/* seconds of clock skew: fail */

#endif /* FA_CLI_H */
