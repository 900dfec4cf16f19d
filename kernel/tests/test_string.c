/*
 * test_string.c — lib/string.c against C semantics, including overlap,
 * sign of comparisons and strncpy's padding.
 */
#include "ktest.h"
#include "string.h"

KTEST(string_memcpy_memset)
{
	char buf[16];
	KT_ASSERT(memset(buf, 'x', sizeof buf) == buf);
	for (unsigned i = 0; i < sizeof buf; i++)
		KT_EQ_U(buf[i], 'x');
	KT_ASSERT(memcpy(buf + 2, "hello", 6) == buf + 2);
	KT_EQ_STR(buf + 2, "hello");
	KT_EQ_U(buf[1], 'x');
	memset(buf, 0, 0);      /* n = 0 writes nothing */
	KT_EQ_U(buf[0], 'x');
	memset(buf, 0x1ff, 1);  /* c converts to unsigned char */
	KT_EQ_U((unsigned char)buf[0], 0xff);
}

KTEST(string_memmove_overlap)
{
	char a[] = "abcdefghij";
	memmove(a + 2, a, 5);           /* dst above src: backwards copy */
	KT_EQ_STR(a, "ababcdehij");
	char b[] = "abcdefghij";
	memmove(b, b + 3, 5);           /* dst below src: forwards copy */
	KT_EQ_STR(b, "defghfghij");
	char c[] = "abc";
	memmove(c, c, 3);
	KT_EQ_STR(c, "abc");
}

KTEST(string_compare)
{
	KT_EQ_U(memcmp("abc", "abc", 3), 0);
	KT_ASSERT(memcmp("abc", "abd", 3) < 0);
	KT_ASSERT(memcmp("\xff", "\x01", 1) > 0);   /* bytes compare unsigned */
	KT_EQ_U(memcmp("abc", "xyz", 0), 0);
	KT_EQ_U(strcmp("", ""), 0);
	KT_ASSERT(strcmp("abc", "abcd") < 0);
	KT_ASSERT(strcmp("b", "abc") > 0);
	KT_ASSERT(strcmp("\x80", "a") > 0);
	KT_EQ_U(strncmp("abcX", "abcY", 3), 0);
	KT_ASSERT(strncmp("abcX", "abcY", 4) < 0);
	KT_EQ_U(strncmp("ab", "ab", 10), 0);
	KT_EQ_U(strncmp("a", "b", 0), 0);
}

KTEST(string_lengths_and_search)
{
	KT_EQ_U(strlen(""), 0);
	KT_EQ_U(strlen("fluid"), 5);
	KT_EQ_U(strnlen("fluid", 3), 3);
	KT_EQ_U(strnlen("fluid", 100), 5);
	const char *s = "a,b,c";
	KT_ASSERT(strchr(s, ',') == s + 1);
	KT_ASSERT(strchr(s, 'z') == 0);
	KT_ASSERT(strchr(s, '\0') == s + 5);   /* the terminator is findable */
}

KTEST(string_strncpy_pads)
{
	char buf[8];
	memset(buf, 'x', sizeof buf);
	strncpy(buf, "ab", sizeof buf);
	KT_EQ_STR(buf, "ab");
	for (unsigned i = 2; i < sizeof buf; i++)
		KT_EQ_U(buf[i], 0);
	memset(buf, 'x', sizeof buf);
	strncpy(buf, "abcdefghij", 4);     /* no terminator when src is longer */
	KT_EQ_U(buf[3], 'd');
	KT_EQ_U(buf[4], 'x');
}
