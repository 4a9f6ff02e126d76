# FA_CHECK_FLAG(VARIABLE, FLAG, RESULT-VARIABLE, [PROLOGUE])
# --------------------------------------------------------
# Append FLAG to RESULT-VARIABLE when a small program that writes to a
# buffer compiles and links, without a warning, with FLAG added to
# VARIABLE (CPPFLAGS, CFLAGS or LDFLAGS).  PROLOGUE may #error to refuse
# the flag in a given setting.  Our own probe: autoconf-archive's
# AX_CHECK_COMPILE_FLAG is not always installed.
AC_DEFUN([FA_CHECK_FLAG], [
	AC_MSG_CHECKING([whether $CC accepts $2])
	fa_save_CFLAGS=$CFLAGS
	fa_save_$1=$$1
	CFLAGS="$CFLAGS -Werror"
	$1="$$1 $2"
	AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <stdio.h>
$4]], [[char b[16];
	snprintf(b, sizeof(b), "%s", "x");
	return b[0] != 'x';]])],
	    [AC_MSG_RESULT([yes]); $3="$$3 $2"],
	    [AC_MSG_RESULT([no])])
	$1=$fa_save_$1
	CFLAGS=$fa_save_CFLAGS
])
