/*
 * ingest._jsonarrow: JSON Lines -> nested Arrow buffers, shaped by a fixed spec, without the GIL.
 *
 * Why C: importing OTLP JSON spends most of its CPU turning text into nested columns. DuckDB's
 * read_json_objects + json_transform (the path this replaces when compiled) measured ~5 CPU-s per
 * million spans here, over half the import, and pyarrow's JSON reader more. This file does the one
 * job the importer needs -- each line to one row of a struct/list/string tree given by
 * ingest.otlp_json.SPEC -- in a single pass, and leaves every check of the values (hex ids, decimal
 * times, enums, AnyValues) to the same vectorised code that checks DuckDB's output.
 *
 * The rows mean what json_transform's mean, with one difference: a missing key or null is NULL,
 * and a value of another JSON type than the spec's struct/list makes the line invalid (json_transform
 * reads it as NULL, so "attributes": "x" would pass as no attributes). A VARCHAR takes a string's
 * unescaped text, a number's text, true/false, or the minified JSON text of an object or array; a
 * STRING node (protobuf's string and bytes fields: ids, names, keys) only a string, as protobuf does. An
 * AnyValue leaf (the spec's JSON type) goes one step further than json_transform: {"stringValue":
 * "GET"} gives the text GET and a kind byte (see ANY_*), which spares the importer cutting values
 * out of JSON texts. A line that is not valid JSON (or valid UTF-8), has a mistyped value, repeats a
 * key of the spec, or nests deeper than 200 levels gives a NULL row: the importer hands such lines
 * to its exact path, which says what is wrong.
 * Blank lines (only ASCII whitespace, as bytes.strip() sees it) give no row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* K_STRING is a VARCHAR that must be a JSON string (or null): protobuf's JSON parser takes nothing else
   for its string and bytes fields, so a number or array there leaves the line to the exact path. */
enum { K_VARCHAR = 0, K_ANY = 1, K_STRUCT = 2, K_LIST = 3, K_STRING = 4 };
#define IS_TEXT(kind) ((kind) == K_VARCHAR || (kind) == K_STRING)
/* What an OTLP AnyValue's text is: NULL (no value), ready, a double (for Python to write as repr
   writes it), or the value's JSON text for Python's exact AnyValue decoder (arrays, kvlists, ...). */
enum { ANY_NULL = 0, ANY_TEXT = 1, ANY_DOUBLE = 2, ANY_JSON = 3 };
#define MAX_FIELDS 64
#define MAX_DEPTH 200

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, size_t n) {
    if (n == 0) return 0; /* an empty buffer has no data pointer: memcpy(NULL, ..., 0) is undefined */
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static int buf_byte(Buf *b, char c) {
    if (b->len == b->cap && buf_reserve(b, 1) < 0) return -1;
    b->data[b->len++] = c;
    return 0;
}

/* One column of the spec tree. */
typedef struct {
    int kind;
    int nfields;
    int fields[MAX_FIELDS]; /* child node indices: struct fields, or [0] the list item */
    char *names[MAX_FIELDS];
    size_t name_lens[MAX_FIELDS];
    Buf validity; /* one bit per row */
    Buf offsets;  /* int32: strings and lists, one more than rows */
    Buf data;     /* strings' bytes */
    Buf kinds;    /* AnyValue leaves: one ANY_* byte per row */
    size_t rows, nulls;
} Node;

typedef struct {
    size_t rows, nulls, validity, offsets, data, kinds;
} Mark;

typedef struct {
    Node *nodes;
    int count;
    Mark *marks;
    Buf key; /* an object key with escapes, unescaped (needed only until its field is found) */
} Tree;

static int mark_row(Node *n, int valid) {
    size_t row = n->rows;
    if ((row & 7) == 0 && buf_byte(&n->validity, 0) < 0) return -1;
    unsigned char *byte = (unsigned char *)n->validity.data + (row >> 3);
    if (valid) *byte |= (unsigned char)(1u << (row & 7));
    else *byte &= (unsigned char)~(1u << (row & 7));
    n->rows++;
    if (!valid) n->nulls++;
    return 0;
}

static int put_offset(Buf *offsets, size_t value) {
    if (value > INT32_MAX) return -1;
    int32_t v = (int32_t)value;
    return buf_put(offsets, &v, sizeof v);
}

/* A NULL row in `index` and, for a struct, in every field (Arrow struct children keep its length). */
static int append_null(Tree *t, int index) {
    Node *n = &t->nodes[index];
    if (mark_row(n, 0) < 0) return -1;
    if (n->kind == K_ANY && buf_byte(&n->kinds, ANY_NULL) < 0) return -1;
    if (IS_TEXT(n->kind) || n->kind == K_ANY) return put_offset(&n->offsets, n->data.len);
    if (n->kind == K_LIST) {
        Node *item = &t->nodes[n->fields[0]];
        return put_offset(&n->offsets, item->rows);
    }
    for (int i = 0; i < n->nfields; i++) {
        if (append_null(t, n->fields[i]) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ lexing */

typedef struct {
    const unsigned char *p, *end;
} Cursor;

static void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) c->p++;
}

static int hex_digit(unsigned char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Length of a valid UTF-8 sequence starting at p (0 if invalid), as the Unicode standard defines it. */
static int utf8_length(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    if (b < 0xC2 || b > 0xF4) return 0;
    int n = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (end - p < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
    }
    if (b == 0xE0 && p[1] < 0xA0) return 0;
    if (b == 0xED && p[1] >= 0xA0) return 0;
    if (b == 0xF0 && p[1] < 0x90) return 0;
    if (b == 0xF4 && p[1] >= 0x90) return 0;
    return n;
}

static int read_u16(const unsigned char *p, const unsigned char *end, unsigned *out) {
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

static int put_utf8(Buf *out, unsigned cp) {
    char bytes[4];
    int n;
    if (cp < 0x80) {
        bytes[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        bytes[0] = (char)(0xC0 | (cp >> 6));
        bytes[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        bytes[0] = (char)(0xE0 | (cp >> 12));
        bytes[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        bytes[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        bytes[0] = (char)(0xF0 | (cp >> 18));
        bytes[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        bytes[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        bytes[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_put(out, bytes, (size_t)n);
}

/*
 * A string token at c->p (on its opening quote). With `raw`, its JSON text (quotes and escapes as
 * written) is appended; with `text`, its unescaped UTF-8. Either may be NULL (validate only).
 * Returns 0, or -1 if the token is not a valid JSON string (or the output could not grow).
 */
static int read_string(Cursor *c, Buf *raw, Buf *text) {
    const unsigned char *start = c->p;
    c->p++;
    const unsigned char *run = c->p;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            if (text && buf_put(text, run, (size_t)(c->p - run)) < 0) return -1;
            c->p++;
            return raw ? buf_put(raw, start, (size_t)(c->p - start)) : 0;
        }
        if (ch < 0x20) return -1;
        if (ch < 0x80) {
            if (ch != '\\') {
                c->p++;
                continue;
            }
            if (text && buf_put(text, run, (size_t)(c->p - run)) < 0) return -1;
            if (c->end - c->p < 2) return -1;
            unsigned char esc = c->p[1];
            c->p += 2;
            char simple = 0;
            switch (esc) {
                case '"': simple = '"'; break;
                case '\\': simple = '\\'; break;
                case '/': simple = '/'; break;
                case 'b': simple = '\b'; break;
                case 'f': simple = '\f'; break;
                case 'n': simple = '\n'; break;
                case 'r': simple = '\r'; break;
                case 't': simple = '\t'; break;
                case 'u': {
                    unsigned cp;
                    if (read_u16(c->p, c->end, &cp) < 0) return -1;
                    c->p += 4;
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        unsigned low;
                        if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u') return -1;
                        if (read_u16(c->p + 2, c->end, &low) < 0 || low < 0xDC00 || low > 0xDFFF) return -1;
                        c->p += 6;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        return -1;
                    }
                    if (text && put_utf8(text, cp) < 0) return -1;
                    break;
                }
                default: return -1;
            }
            if (simple && text && buf_byte(text, simple) < 0) return -1;
            run = c->p;
            continue;
        }
        int n = utf8_length(c->p, c->end);
        if (!n) return -1;
        c->p += n;
    }
    return -1;
}

/* A number token; its text is appended to `out` if given. */
static int read_number(Cursor *c, Buf *out) {
    const unsigned char *start = c->p;
    if (c->p < c->end && *c->p == '-') c->p++;
    if (c->p >= c->end) return -1;
    if (*c->p == '0') {
        c->p++;
    } else if (*c->p >= '1' && *c->p <= '9') {
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    } else {
        return -1;
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    }
    return out ? buf_put(out, start, (size_t)(c->p - start)) : 0;
}

static int read_literal(Cursor *c, const char *word, Buf *out) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return -1;
    c->p += n;
    return out ? buf_put(out, word, n) : 0;
}

/* Any JSON value: validated, and appended minified (strings as written) to `out` if given. */
static int read_any(Cursor *c, Buf *out, int depth) {
    if (depth > MAX_DEPTH || c->p >= c->end) return -1;
    unsigned char ch = *c->p;
    if (ch == '"') return read_string(c, out, NULL);
    if (ch == '{' || ch == '[') {
        unsigned char close = ch == '{' ? '}' : ']';
        if (out && buf_byte(out, (char)ch) < 0) return -1;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return out ? buf_byte(out, (char)close) : 0;
        }
        for (;;) {
            if (ch == '{') {
                if (c->p >= c->end || *c->p != '"' || read_string(c, out, NULL) < 0) return -1;
                skip_ws(c);
                if (c->p >= c->end || *c->p != ':') return -1;
                c->p++;
                if (out && buf_byte(out, ':') < 0) return -1;
                skip_ws(c);
            }
            if (read_any(c, out, depth + 1) < 0) return -1;
            skip_ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') {
                c->p++;
                if (out && buf_byte(out, ',') < 0) return -1;
                skip_ws(c);
                continue;
            }
            if (*c->p != close) return -1;
            c->p++;
            return out ? buf_byte(out, (char)close) : 0;
        }
    }
    if (ch == 't') return read_literal(c, "true", out);
    if (ch == 'f') return read_literal(c, "false", out);
    if (ch == 'n') return read_literal(c, "null", out);
    return read_number(c, out);
}

/* ------------------------------------------------------------------ the spec tree */

static int read_into(Tree *t, int index, Cursor *c, int depth);

static int field_of(Node *n, const char *key, size_t len) {
    for (int i = 0; i < n->nfields; i++) {
        if (n->name_lens[i] == len && memcmp(n->names[i], key, len) == 0) return i;
    }
    return -1;
}

/* The field an object key names (-1 for none); the key is read past, escapes and all. */
static int read_key(Tree *t, Node *n, Cursor *c) {
    const unsigned char *start = c->p + 1, *p = start;
    while (p < c->end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
    if (p < c->end && *p == '"') { /* the usual plain ASCII key: compared in place */
        c->p = p + 1;
        return field_of(n, (const char *)start, (size_t)(p - start));
    }
    t->key.len = 0;
    if (read_string(c, NULL, &t->key) < 0) return -2;
    return field_of(n, t->key.data ? t->key.data : "", t->key.len);
}

static int read_struct(Tree *t, int index, Cursor *c, int depth) {
    Node *n = &t->nodes[index];
    uint64_t seen = 0;
    c->p++; /* { */
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
    } else {
        for (;;) {
            if (c->p >= c->end || *c->p != '"') return -1;
            int field = read_key(t, n, c);
            if (field == -2) return -1;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':') return -1;
            c->p++;
            skip_ws(c);
            if (field >= 0) {
                if (seen & (1ull << field)) return -1; /* a repeated key: let the exact path decide */
                seen |= 1ull << field;
                if (read_into(t, n->fields[field], c, depth + 1) < 0) return -1;
            } else if (read_any(c, NULL, depth + 1) < 0) {
                return -1;
            }
            skip_ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') {
                c->p++;
                skip_ws(c);
                continue;
            }
            if (*c->p != '}') return -1;
            c->p++;
            break;
        }
    }
    for (int i = 0; i < n->nfields; i++) {
        if (!(seen & (1ull << i)) && append_null(t, n->fields[i]) < 0) return -1;
    }
    return mark_row(n, 1);
}

static int read_list(Tree *t, int index, Cursor *c, int depth) {
    Node *n = &t->nodes[index];
    int item = n->fields[0];
    c->p++; /* [ */
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
    } else {
        for (;;) {
            if (read_into(t, item, c, depth + 1) < 0) return -1;
            skip_ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') {
                c->p++;
                skip_ws(c);
                continue;
            }
            if (*c->p != ']') return -1;
            c->p++;
            break;
        }
    }
    if (put_offset(&n->offsets, t->nodes[item].rows) < 0) return -1;
    return mark_row(n, 1);
}

/* Whether text is an int64 as Python's int() then str() writes it: 0, or an optional '-' and
   digits without a leading zero. 19 digits are left to the exact decoder (range check there). */
static int canonical_int64(const char *text, size_t len) {
    size_t i = 0;
    if (len == 1 && text[0] == '0') return 1;
    if (len && text[0] == '-') i = 1;
    if (len - i < 1 || len - i > 18 || text[i] < '1' || text[i] > '9') return 0;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return 0;
    }
    return 1;
}

static int end_any(Node *n, char kind) {
    if (buf_byte(&n->kinds, kind) < 0 || put_offset(&n->offsets, n->data.len) < 0) return -1;
    return mark_row(n, 1);
}

/* An OTLP AnyValue: its text when it holds one scalar, else its JSON text for Python (ANY_JSON). */
static int read_anyvalue(Tree *t, int index, Cursor *c, int depth) {
    Node *n = &t->nodes[index];
    const unsigned char *start = c->p;
    size_t mark = n->data.len;
    if (*c->p == 'n') {
        if (read_literal(c, "null", NULL) < 0) return -1;
        return append_null(t, index);
    }
    if (*c->p == '{') {
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return append_null(t, index);
        }
        const unsigned char *key = c->p + 1, *p = key;
        while (p < c->end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) p++;
        size_t len = (size_t)(p - key);
        /* The JSON types protobuf's parser takes as they are: a string for stringValue, a canonical
           int64 (string or number) for intValue, true/false for boolValue, a number for doubleValue.
           Anything else (and every bytesValue, which protobuf decodes and the store re-encodes) goes
           to the exact decoder as JSON text, which reads it as protobuf does or refuses the line. */
        char kind = 0, want = 0;
        if (c->p < c->end && *c->p == '"' && p < c->end && *p == '"') {
            if (len == 11 && !memcmp(key, "stringValue", 11)) {
                kind = ANY_TEXT, want = 's';
            } else if (len == 8 && !memcmp(key, "intValue", 8)) {
                kind = ANY_TEXT, want = 'i';
            } else if (len == 9 && !memcmp(key, "boolValue", 9)) {
                kind = ANY_TEXT, want = 'b';
            } else if (len == 11 && !memcmp(key, "doubleValue", 11)) {
                kind = ANY_DOUBLE, want = 'd';
            }
        }
        if (kind) {
            c->p = p + 1;
            skip_ws(c);
            if (c->p < c->end && *c->p == ':') {
                c->p++;
                skip_ws(c);
                unsigned char first = c->p < c->end ? *c->p : 0;
                int typed = want == 's'   ? first == '"'
                            : want == 'i' ? first == '"' || first == '-' || (first >= '0' && first <= '9')
                            : want == 'b' ? first == 't' || first == 'f'
                                          : first == '-' || (first >= '0' && first <= '9');
                if (typed) {
                    size_t at = n->data.len;
                    int read = first == '"' ? read_string(c, NULL, &n->data) : read_any(c, &n->data, depth + 1);
                    if (read < 0) return -1;
                    skip_ws(c);
                    if (c->p < c->end && *c->p == '}' &&
                        (want != 'i' || canonical_int64(n->data.data + at, n->data.len - at))) {
                        c->p++;
                        return end_any(n, kind);
                    }
                }
            }
        }
    }
    /* Anything else (arrays, kvlists, several keys, escaped keys, not an object): its JSON text. */
    c->p = start;
    n->data.len = mark;
    if (read_any(c, &n->data, depth) < 0) return -1;
    return end_any(n, ANY_JSON);
}

/* One JSON value into node `index` (one row of it). */
static int read_into(Tree *t, int index, Cursor *c, int depth) {
    Node *n = &t->nodes[index];
    if (depth > MAX_DEPTH || c->p >= c->end) return -1;
    unsigned char ch = *c->p;
    switch (n->kind) {
        case K_STRUCT:
        case K_LIST:
            if (n->kind == K_STRUCT && ch == '{') return read_struct(t, index, c, depth);
            if (n->kind == K_LIST && ch == '[') return read_list(t, index, c, depth);
            /* null is an absent field; any other type is wrong, and the line is left to the exact
               path, which says so (json_transform reads both as NULL and cannot tell them apart). */
            if (read_literal(c, "null", NULL) < 0) return -1;
            return append_null(t, index);
        case K_ANY:
            return read_anyvalue(t, index, c, depth);
        default:
            if (ch == 'n') {
                if (read_literal(c, "null", NULL) < 0) return -1;
                return append_null(t, index);
            }
            if (ch == '"') {
                if (read_string(c, NULL, &n->data) < 0) return -1;
            } else if (n->kind == K_STRING || read_any(c, &n->data, depth) < 0) {
                return -1;
            }
            if (put_offset(&n->offsets, n->data.len) < 0) return -1;
            return mark_row(n, 1);
    }
}

static void mark_all(Tree *t) {
    for (int i = 0; i < t->count; i++) {
        Node *n = &t->nodes[i];
        t->marks[i] = (Mark){n->rows, n->nulls, n->validity.len, n->offsets.len, n->data.len, n->kinds.len};
    }
}

static void rewind_all(Tree *t) {
    for (int i = 0; i < t->count; i++) {
        Node *n = &t->nodes[i];
        Mark *m = &t->marks[i];
        n->rows = m->rows;
        n->nulls = m->nulls;
        n->validity.len = m->validity;
        n->offsets.len = m->offsets;
        n->data.len = m->data;
        n->kinds.len = m->kinds;
    }
}

static int is_blank(const unsigned char *p, const unsigned char *end) {
    for (; p < end; p++) {
        if (!(*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f')) return 0;
    }
    return 1;
}

/* Every line of `data` into the tree (node 0 is the row). Returns -1 only when out of memory. */
static int read_lines(Tree *t, const unsigned char *data, size_t size) {
    const unsigned char *p = data, *end = data + size;
    while (p < end) {
        const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if (!is_blank(p, eol)) {
            mark_all(t);
            Cursor c = {p, eol};
            skip_ws(&c);
            int ok = read_into(t, 0, &c, 0) == 0;
            if (ok) {
                skip_ws(&c);
                ok = c.p == c.end;
            }
            if (!ok) {
                rewind_all(t);
                if (append_null(t, 0) < 0) return -1;
            }
        }
        p = eol + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ Python */

static void tree_free(Tree *t) {
    if (t->nodes) {
        for (int i = 0; i < t->count; i++) {
            Node *n = &t->nodes[i];
            free(n->validity.data);
            free(n->offsets.data);
            free(n->data.data);
            free(n->kinds.data);
            for (int f = 0; f < n->nfields; f++) free(n->names[f]);
        }
    }
    free(t->nodes);
    free(t->marks);
    free(t->key.data);
}

/* The spec: a sequence of (kind, fields) with fields a sequence of (name, child index) for a struct,
   a child index for a list, None for a leaf. */
static int tree_init(Tree *t, PyObject *spec) {
    memset(t, 0, sizeof *t);
    PyObject *seq = PySequence_Fast(spec, "the spec must be a sequence of (kind, fields)");
    if (!seq) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    int result = -1;
    if (count < 1 || count > 4096) {
        PyErr_SetString(PyExc_ValueError, "the spec needs 1 to 4096 nodes");
        goto done;
    }
    t->count = (int)count;
    t->nodes = calloc((size_t)count, sizeof(Node));
    t->marks = calloc((size_t)count, sizeof(Mark));
    if (!t->nodes || !t->marks) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Node *n = &t->nodes[i];
        PyObject *fields;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "iO", &n->kind, &fields)) goto done;
        if (n->kind == K_LIST) {
            long child = PyLong_AsLong(fields);
            if (child <= i || child >= count) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a list item must be a later node");
                goto done;
            }
            n->nfields = 1;
            n->fields[0] = (int)child;
        } else if (n->kind == K_STRUCT) {
            PyObject *items = PySequence_Fast(fields, "a struct's fields must be (name, index) pairs");
            if (!items) goto done;
            Py_ssize_t nf = PySequence_Fast_GET_SIZE(items);
            if (nf > MAX_FIELDS) {
                Py_DECREF(items);
                PyErr_SetString(PyExc_ValueError, "a struct has more than 64 fields");
                goto done;
            }
            for (Py_ssize_t f = 0; f < nf; f++) {
                const char *name;
                Py_ssize_t len;
                int child;
                if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, f), "s#i", &name, &len, &child) ||
                    child <= i || child >= count) {
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a field must be a later node");
                    Py_DECREF(items);
                    goto done;
                }
                n->names[f] = malloc((size_t)len + 1);
                if (!n->names[f]) {
                    Py_DECREF(items);
                    PyErr_NoMemory();
                    goto done;
                }
                memcpy(n->names[f], name, (size_t)len + 1);
                n->name_lens[f] = (size_t)len;
                n->fields[f] = child;
                n->nfields = (int)f + 1;
            }
            Py_DECREF(items);
        } else if (!IS_TEXT(n->kind) && n->kind != K_ANY) {
            PyErr_Format(PyExc_ValueError, "unknown node kind %d", n->kind);
            goto done;
        }
        if (n->kind != K_STRUCT && put_offset(&n->offsets, 0) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    result = 0;
done:
    Py_DECREF(seq);
    return result;
}

/* A read-only buffer that owns memory this module allocated: handed to Arrow without a copy (a copy
   into bytes would page-fault in the whole output a second time). */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
} Owned;

static int owned_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Owned *owned = (Owned *)self;
    return PyBuffer_FillInfo(view, self, owned->data, owned->len, 1, flags);
}

static void owned_dealloc(PyObject *self) {
    free(((Owned *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs owned_as_buffer = {owned_getbuffer, NULL};

static PyTypeObject OwnedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ingest._jsonarrow.Buffer",
    .tp_basicsize = sizeof(Owned),
    .tp_dealloc = owned_dealloc,
    .tp_as_buffer = &owned_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Column bytes read by transform().",
};

/* The buffer's memory as a Python object; the Buf gives it up. */
static PyObject *bytes_of(Buf *b) {
    Owned *owned = PyObject_New(Owned, &OwnedType);
    if (!owned) return NULL;
    owned->data = b->data ? b->data : malloc(1);
    owned->len = (Py_ssize_t)b->len;
    if (!owned->data) {
        owned->data = NULL;
        Py_DECREF(owned);
        return PyErr_NoMemory();
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return (PyObject *)owned;
}

static PyObject *transform(PyObject *module, PyObject *args) {
    Py_buffer data;
    PyObject *spec;
    if (!PyArg_ParseTuple(args, "y*O:transform", &data, &spec)) return NULL;
    Tree t;
    PyObject *result = NULL;
    if (tree_init(&t, spec) < 0) goto done;
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = read_lines(&t, (const unsigned char *)data.buf, (size_t)data.len);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_SetString(PyExc_MemoryError, "out of memory (or a column past 2 GiB) reading JSON lines");
        goto done;
    }
    result = PyList_New(t.count);
    if (!result) goto done;
    for (int i = 0; i < t.count; i++) {
        Node *n = &t.nodes[i];
        int has_offsets = n->kind != K_STRUCT, has_data = IS_TEXT(n->kind) || n->kind == K_ANY;
        PyObject *item = Py_BuildValue(
            "(nnNNNN)", (Py_ssize_t)n->rows, (Py_ssize_t)n->nulls, bytes_of(&n->validity),
            has_offsets ? bytes_of(&n->offsets) : (Py_INCREF(Py_None), Py_None),
            has_data ? bytes_of(&n->data) : (Py_INCREF(Py_None), Py_None),
            n->kind == K_ANY ? bytes_of(&n->kinds) : (Py_INCREF(Py_None), Py_None));
        if (!item) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, item);
    }
done:
    tree_free(&t);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"transform", transform, METH_VARARGS,
     "transform(data, spec) -> [(rows, nulls, validity, offsets, data, kinds), ...] per spec node\n\n"
     "Each non-blank line of `data` as one row of node 0, the GIL released while reading."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "ingest._jsonarrow",
                                    "JSON Lines to nested Arrow buffers by a fixed spec.", -1, methods};

PyMODINIT_FUNC PyInit__jsonarrow(void) {
    if (PyType_Ready(&OwnedType) < 0) return NULL;
    return PyModule_Create(&module);
}
