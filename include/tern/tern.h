/* Tern: a TCP/IP stack that runs inside a process. The one header to
 * include. */
#ifndef TERN_TERN_H
#define TERN_TERN_H

#include <tern/common.h>
#include <tern/link.h>
#include <tern/stack.h>
#include <tern/socket.h>
#include <tern/runtime.h>

#endif
