/* Values, clocks and Markdown tables for the benchmarks. */
#include "bench.h"

#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void bval_set(struct bench_val *b, double v)
{
    b->ok = true;
    b->v = v;
}

void bval_fail(struct bench_val *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof(b->why), fmt, ap);
    va_end(ap);
    b->ok = false;
    b->v = 0;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TERN_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t bench_ns(double seconds) { return (uint64_t)(seconds * 1e9); }

void table_init(struct table *t, const char *title, int ncols, const char *const *head)
{
    memset(t, 0, sizeof(*t));
    t->title = title;
    t->ncols = ncols < TABLE_MAX_COLS ? ncols : TABLE_MAX_COLS;
    for (int i = 0; i < t->ncols; i++)
        t->head[i] = head[i];
}

int table_row(struct table *t)
{
    if (t->nrows == TABLE_MAX_ROWS)
        return TABLE_MAX_ROWS - 1; /* overwrite the last: a bench bug, visible */
    return t->nrows++;
}

void table_set(struct table *t, int row, int col, const char *fmt, ...)
{
    if (row < 0 || row >= TABLE_MAX_ROWS || col < 0 || col >= t->ncols)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->cell[row][col], TABLE_CELL, fmt, ap);
    va_end(ap);
}

void table_val(struct table *t, int row, int col, const struct bench_val *b, const char *fmt)
{
    if (!b->ok) {
        table_set(t, row, col, "n/a (%s)", b->why[0] ? b->why : "not run");
        return;
    }
    char num[48];
    snprintf(num, sizeof(num), fmt, b->v);
    if (b->why[0])
        table_set(t, row, col, "%s (%s)", num, b->why);
    else
        table_set(t, row, col, "%s", num);
}

void table_ratio(struct table *t, int row, int col, const struct bench_val *a,
                 const struct bench_val *b)
{
    if (!a->ok || !b->ok || b->v <= 0)
        table_set(t, row, col, "-");
    else
        table_set(t, row, col, "%.2fx", a->v / b->v);
}

void table_note(struct table *t, const char *fmt, ...)
{
    if (t->nnotes == TABLE_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->note[t->nnotes++], TABLE_NOTE, fmt, ap);
    va_end(ap);
}

void table_print(const struct table *t, FILE *f)
{
    size_t w[TABLE_MAX_COLS];
    for (int c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->head[c]);
        for (int r = 0; r < t->nrows; r++)
            if (strlen(t->cell[r][c]) > w[c])
                w[c] = strlen(t->cell[r][c]);
    }
    fprintf(f, "\n### %s\n\n", t->title);
    for (int c = 0; c < t->ncols; c++)
        fprintf(f, "| %-*s ", (int)w[c], t->head[c]);
    fprintf(f, "|\n");
    for (int c = 0; c < t->ncols; c++) {
        fputs("|", f);
        for (size_t i = 0; i < w[c] + 2; i++)
            fputc('-', f);
    }
    fprintf(f, "|\n");
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            fprintf(f, "| %-*s ", (int)w[c], t->cell[r][c]);
        fprintf(f, "|\n");
    }
    if (t->nnotes)
        fputc('\n', f);
    for (int i = 0; i < t->nnotes; i++)
        fprintf(f, "- %s\n", t->note[i]);
    fflush(f);
}

uint64_t bench_raise_nofile(uint64_t n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur >= n)
        return rl.rlim_cur;
    struct rlimit want = rl;
    want.rlim_cur = n;
    if (want.rlim_max < n)
        want.rlim_max = n; /* needs CAP_SYS_RESOURCE */
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        return n;
    want.rlim_cur = rl.rlim_max;
    want.rlim_max = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        return rl.rlim_max;
    return rl.rlim_cur;
}
