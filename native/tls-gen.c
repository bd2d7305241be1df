/*
 * tls-gen: a synthetic caller for bench/tls-ring.mjs. It defines functions named SSL_write and
 * SSL_read with OpenSSL's signatures and calls them in a loop, so the real uprobe/uretprobe path
 * (entry, return, copy, ring buffer) runs at a rate no TLS connection would reach on one core.
 * Usage: tls-gen <calls> <bytes per call> [write|read]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline, used)) int SSL_write(void *ssl, const void *buf, int num)
{
	__asm__ volatile("" : : "r"(ssl), "r"(buf) : "memory");
	return num;
}

__attribute__((noinline, used)) int SSL_read(void *ssl, void *buf, int num)
{
	__asm__ volatile("" : : "r"(ssl), "r"(buf) : "memory");
	return num;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 100000;
	int size = argc > 2 ? atoi(argv[2]) : 64;
	int rd = argc > 3 && strcmp(argv[3], "read") == 0;
	char *buf = malloc(size > 0 ? size : 1);
	memset(buf, 'x', size);
	for (long i = 0; i < calls; i++) {
		if (rd)
			SSL_read(buf, buf, size);
		else
			SSL_write(buf, buf, size);
	}
	printf("%ld\n", calls);
	return 0;
}
