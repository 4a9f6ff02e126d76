/*
 * The single-hash time: Argon2id at a given cost, as fcgi-auth computes it.
 * usage: hash-time OPSLIMIT MEMLIMIT [ROUNDS] -> prints milliseconds
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

int
main(int argc, char **argv)
{
	char		 out[crypto_pwhash_STRBYTES];
	struct timespec	 a, b;
	unsigned long	 ops;
	size_t		 mem;
	int		 i, rounds;

	if (argc < 3 || sodium_init() < 0)
		return 2;
	ops = strtoul(argv[1], NULL, 10);
	mem = strtoul(argv[2], NULL, 10);
	rounds = argc > 3 ? atoi(argv[3]) : 10;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < rounds; i++)
		if (crypto_pwhash_str(out, "correct horse battery", 21, ops,
		    mem) != 0)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e3 +
	    (b.tv_nsec - a.tv_nsec) / 1e6) / rounds);
	return 0;
}
