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
#define DOCTOR_CONNECT_TIMEOUT	"5"	/* seconds, PostgreSQL */
#define DOCTOR_SKEW_WARN	2	/* seconds of clock skew: warn */
#define DOCTOR_SKEW_FAIL	30	/* seconds of clock skew: fail */

/* time helpers (util.c) */
long long	 now_ms(void);
long long	 now_us(void);
void		 rfc3339(char out[40], long long ms);
long long	 mono_ms(void);		/* monotonic, for deadlines */
struct timeval	 ms_tv(long long ms);
/* the request's backend deadline (util.c): armed at the first backend wait */
void		 deadline_start(void);
void		 deadline_rearm(void);
long long	 deadline_at(long timeout_ms);
/* the decimal number parser and the small-file reader (util.c) */
int		 num_parse(const char *, long long, long long, long long *);
int		 file_read(const char *, size_t, char **, size_t *);

#endif /* FA_CLI_H */
