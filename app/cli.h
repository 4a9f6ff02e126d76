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

#endif /* FA_CLI_H */
