#include "pcapcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

int pcap_check(const char *path)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", TERN_TSHARK_CHECK, path);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc))
        return 127;
    return WEXITSTATUS(rc);
}
