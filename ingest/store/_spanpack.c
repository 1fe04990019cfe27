/*
 * ingest._spanpack: OpenTelemetry SDK spans -> Arrow column buffers, in one pass per span.
 *
 * Why C: the pure-Python encoder (ingest/encoding.py) needs one C-level `map` per column over
 * spans that are no longer in the CPU cache, plus a Python step per attribute value; that floor is
 * about 4 us/span here, most of the exporter's budget. This file reads each span's fields once,
 * writes ids as hex, times as int64 and attribute texts straight into byte buffers, and returns
 * them for pyarrow's `from_buffers`. It reads the same private fields the Python encoder reads
 * (ReadableSpan._attributes and friends) and gives up -- returns None, so the caller takes the
 * Python path -- on anything it does not recognise. Values it has no text for (lists, bytes, ...)
 * go through the `attribute_text` callable it is given, so both paths write the same text.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (n == 0) return 0; /* an empty buffer has no data pointer: memcpy(NULL, ..., 0) is undefined */
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static int buf_put_i32(Buf *b, int32_t v) { return buf_put(b, &v, sizeof v); }

static PyObject *buf_bytes(Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len); }

static void buf_free(Buf *b) {
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* A string column: offsets (int32, one more than rows) and UTF-8 data, plus a validity bitmap. */
typedef struct {
    Buf offsets;
    Buf data;
    Buf validity;
    Py_ssize_t nulls;
    Py_ssize_t rows;
} StrCol;

static int col_mark(Buf *validity, Py_ssize_t row, int valid) {
    if ((row & 7) == 0) {
        unsigned char zero = 0;
        if (buf_put(validity, &zero, 1) < 0) return -1;
    }
    if (valid) validity->data[row >> 3] |= (unsigned char)(1u << (row & 7));
    return 0;
}

/* The first offset of a zeroed column. */
static int strcol_init(StrCol *c) { return buf_put_i32(&c->offsets, 0); }

static int strcol_end_row(StrCol *c, int valid) {
    if (c->data.len > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "string column larger than 2 GiB");
        return -1;
    }
    if (col_mark(&c->validity, c->rows, valid) < 0) return -1;
    c->rows++;
    if (!valid) c->nulls++;
    return buf_put_i32(&c->offsets, (int32_t)c->data.len);
}

static int strcol_put_utf8(StrCol *c, PyObject *text) {
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (!utf8) return -1;
    if (buf_put(&c->data, utf8, size) < 0) return -1;
    return strcol_end_row(c, 1);
}

/* Appends a str (or None as NULL); anything else is not ours to interpret: returns 1. */
static int strcol_put_optional(StrCol *c, PyObject *value) {
    if (value == Py_None) return strcol_end_row(c, 0);
    if (!PyUnicode_CheckExact(value)) return 1;
    return strcol_put_utf8(c, value);
}

static void strcol_free(StrCol *c) {
    buf_free(&c->offsets);
    buf_free(&c->data);
    buf_free(&c->validity);
}

static PyObject *strcol_result(StrCol *c) {
    PyObject *validity = c->nulls ? buf_bytes(&c->validity) : (Py_INCREF(Py_None), Py_None);
    if (!validity) return NULL;
    return Py_BuildValue("(NNNn)", buf_bytes(&c->offsets), buf_bytes(&c->data), validity, c->nulls);
}

/* A nullable int64 column. */
typedef struct {
    Buf values;
    Buf validity;
    Py_ssize_t nulls;
    Py_ssize_t rows;
} I64Col;

static int i64col_put(I64Col *c, PyObject *value) {
    int64_t v = 0;
    int valid = value != Py_None;
    if (valid) {
        if (!PyLong_Check(value)) return 1;
        v = PyLong_AsLongLong(value);
        if (v == -1 && PyErr_Occurred()) return -1;
    }
    if (buf_put(&c->values, &v, sizeof v) < 0) return -1;
    if (col_mark(&c->validity, c->rows, valid) < 0) return -1;
    c->rows++;
    if (!valid) c->nulls++;
    return 0;
}

static PyObject *i64col_result(I64Col *c) {
    PyObject *validity = c->nulls ? buf_bytes(&c->validity) : (Py_INCREF(Py_None), Py_None);
    if (!validity) return NULL;
    return Py_BuildValue("(NNn)", buf_bytes(&c->values), validity, c->nulls);
}

static const char HEX[] = "0123456789abcdef";

static int put_hex(Buf *b, const unsigned char *raw, Py_ssize_t width) {
    if (buf_reserve(b, width * 2) < 0) return -1;
    char *out = b->data + b->len;
    for (Py_ssize_t i = 0; i < width; i++) {
        out[2 * i] = HEX[raw[i] >> 4];
        out[2 * i + 1] = HEX[raw[i] & 15];
    }
    b->len += width * 2;
    return 0;
}

static int put_u64_hex(Buf *b, PyObject *value) {
    unsigned long long v = PyLong_AsUnsignedLongLong(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    unsigned char raw[8];
    for (int i = 7; i >= 0; i--, v >>= 8) raw[i] = (unsigned char)(v & 0xff);
    return put_hex(b, raw, 8);
}

static int put_u128_hex(Buf *b, PyObject *value) {
    unsigned char raw[16];
#if PY_VERSION_HEX >= 0x030D0000
    if (_PyLong_AsByteArray((PyLongObject *)value, raw, 16, 0, 0, 1) < 0) return -1;
#else
    if (_PyLong_AsByteArray((PyLongObject *)value, raw, 16, 0, 0) < 0) return -1;
#endif
    return put_hex(b, raw, 16);
}

/* Interned attribute names, made once at import. */
static PyObject *s_context, *s_parent, *s_start_time, *s_end_time, *s_status, *s_scope, *s_name, *s_kind,
    *s_resource, *s_attributes, *s_events, *s_links, *s_status_code, *s_description, *s_dict, *s_dq,
    *s_dropped;

typedef struct {
    PyObject *bounded_attributes; /* type */
    PyObject *bounded_list;       /* type */
    PyObject *kinds;              /* tuple of SpanKind members, index = code */
    PyObject *codes;              /* tuple of StatusCode members, index = code */
    PyObject *attribute_text;     /* callable for values with no C text */
} Config;

/* The attribute map column of the spans: keys and value texts of every row, flattened. */
typedef struct {
    Buf rows;  /* int32 offsets into entries, one per span plus one */
    StrCol keys;
    StrCol values;
    Buf dropped; /* int32 per span */
} MapCol;

static int put_value_text(MapCol *m, PyObject *value, PyObject *attribute_text) {
    if (PyUnicode_CheckExact(value)) return strcol_put_utf8(&m->values, value);
    if (value == Py_True || value == Py_False) {
        const char *text = value == Py_True ? "true" : "false";
        if (buf_put(&m->values.data, text, (Py_ssize_t)strlen(text)) < 0) return -1;
        return strcol_end_row(&m->values, 1);
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (!overflow) {
            /* Decimal digits by hand: snprintf's format parsing cost more than the rest of the value. */
            char text[24];
            char *end = text + sizeof text, *digit = end;
            unsigned long long magnitude = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            do {
                *--digit = (char)('0' + magnitude % 10);
                magnitude /= 10;
            } while (magnitude);
            if (v < 0) *--digit = '-';
            if (buf_put(&m->values.data, digit, end - digit) < 0) return -1;
            return strcol_end_row(&m->values, 1);
        }
    }
    if (PyFloat_CheckExact(value)) {
        /* The same call float.__repr__ makes, so "1.0", "inf", "nan" match attribute_text exactly. */
        char *text = PyOS_double_to_string(PyFloat_AS_DOUBLE(value), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!text) return -1;
        int failed = buf_put(&m->values.data, text, (Py_ssize_t)strlen(text));
        PyMem_Free(text);
        if (failed < 0) return -1;
        return strcol_end_row(&m->values, 1);
    }
    PyObject *text = PyObject_CallOneArg(attribute_text, value);
    if (!text) return -1;
    int result = PyUnicode_Check(text) ? strcol_put_utf8(&m->values, text) : 1;
    Py_DECREF(text);
    return result;
}

/* The dict or deque inside an SDK bounded container (a new reference) and its drop count. */
static int unwrap_bounded(PyObject *container, PyObject *inner_name, PyObject **inner, long *dropped) {
    PyObject *count = PyObject_GetAttr(container, s_dropped);
    if (!count) return -1;
    *dropped = PyLong_AsLong(count);
    Py_DECREF(count);
    if (*dropped == -1 && PyErr_Occurred()) return -1;
    *inner = PyObject_GetAttr(container, inner_name);
    return *inner ? 0 : -1;
}

/* One span's attributes: BoundedAttributes, a plain dict or None. Returns 1 for anything else. */
static int put_attributes(MapCol *m, PyObject *container, const Config *cfg) {
    PyObject *dict = NULL;
    long dropped = 0;
    int result = 0;
    if (container == Py_None) {
        dict = NULL;
    } else if ((PyObject *)Py_TYPE(container) == cfg->bounded_attributes) {
        if (unwrap_bounded(container, s_dict, &dict, &dropped) < 0) return -1;
        if (!PyDict_CheckExact(dict)) {
            Py_DECREF(dict);
            return 1;
        }
    } else if (PyDict_CheckExact(container)) {
        dict = container;
        Py_INCREF(dict);
    } else {
        return 1;
    }
    if (dict) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(dict, &pos, &key, &value)) {
            if (!PyUnicode_CheckExact(key)) {
                result = 1;
                break;
            }
            /* The callback for rare value types may run Python code: hold our own references. */
            Py_INCREF(key);
            Py_INCREF(value);
            result = strcol_put_utf8(&m->keys, key);
            if (result == 0) result = put_value_text(m, value, cfg->attribute_text);
            Py_DECREF(key);
            Py_DECREF(value);
            if (result) break;
        }
        Py_DECREF(dict);
        if (result) return result;
    }
    if (m->keys.rows > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2**31 attributes in one batch");
        return -1;
    }
    if (buf_put_i32(&m->rows, (int32_t)m->keys.rows) < 0) return -1;
    return buf_put_i32(&m->dropped, (int32_t)dropped);
}

/* One span's events or links: a BoundedList, a tuple or list, or None; items go to `flat`. */
static int put_items(Buf *offsets, Buf *dropped, PyObject *flat, PyObject *container, const Config *cfg) {
    PyObject *items = NULL;
    long dropped_count = 0;
    if (container == Py_None) {
        items = NULL;
    } else if ((PyObject *)Py_TYPE(container) == cfg->bounded_list) {
        if (unwrap_bounded(container, s_dq, &items, &dropped_count) < 0) return -1;
    } else if (PyTuple_CheckExact(container) || PyList_CheckExact(container)) {
        items = container;
        Py_INCREF(items);
    } else {
        return 1;
    }
    if (items) {
        Py_ssize_t size = PyObject_Size(items);
        if (size < 0) {
            Py_DECREF(items);
            return -1;
        }
        if (size > 0) {
            PyObject *iterator = PyObject_GetIter(items);
            if (!iterator) {
                Py_DECREF(items);
                return -1;
            }
            PyObject *item;
            while ((item = PyIter_Next(iterator))) {
                int failed = PyList_Append(flat, item);
                Py_DECREF(item);
                if (failed < 0) break;
            }
            Py_DECREF(iterator);
        }
        Py_DECREF(items);
        if (PyErr_Occurred()) return -1;
    }
    if (PyList_GET_SIZE(flat) > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2**31 events or links in one batch");
        return -1;
    }
    if (buf_put_i32(offsets, (int32_t)PyList_GET_SIZE(flat)) < 0) return -1;
    return buf_put_i32(dropped, (int32_t)dropped_count);
}

static int member_index(PyObject *members, PyObject *member) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(members); i++) {
        if (PyTuple_GET_ITEM(members, i) == member) return (int)i;
    }
    return -1;
}

/* Every column a span needs, filled row by row. */
typedef struct {
    Buf trace_id, span_id, parent_id, parent_valid, kind, status;
    Py_ssize_t parent_nulls;
    StrCol name, message;
    I64Col start, end;
    MapCol attributes;
    Buf event_offsets, event_dropped, link_offsets, link_dropped;
    PyObject *events, *links, *scopes, *resources, *trace_states;
} Columns;

static void columns_free(Columns *c) {
    Buf *bufs[] = {&c->trace_id, &c->span_id, &c->parent_id, &c->parent_valid, &c->kind, &c->status,
                   &c->start.values, &c->start.validity, &c->end.values, &c->end.validity,
                   &c->attributes.rows, &c->attributes.dropped, &c->event_offsets, &c->event_dropped,
                   &c->link_offsets, &c->link_dropped};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) buf_free(bufs[i]);
    strcol_free(&c->name);
    strcol_free(&c->message);
    strcol_free(&c->attributes.keys);
    strcol_free(&c->attributes.values);
    Py_XDECREF(c->events);
    Py_XDECREF(c->links);
    Py_XDECREF(c->scopes);
    Py_XDECREF(c->resources);
    Py_XDECREF(c->trace_states);
}

/* Fields of one span, as new references. */
typedef struct {
    PyObject *context, *parent, *start, *end, *status, *scope, *name, *kind, *resource, *attributes, *events,
        *links, *code, *description;
} Fields;

static void fields_clear(Fields *f) {
    PyObject **all = (PyObject **)f;
    for (size_t i = 0; i < sizeof *f / sizeof(PyObject *); i++) Py_CLEAR(all[i]);
}

static int fields_read(Fields *f, PyObject *span) {
    PyObject *names[] = {s_context, s_parent, s_start_time, s_end_time, s_status, s_scope,
                         s_name, s_kind, s_resource, s_attributes, s_events, s_links};
    PyObject **slots = (PyObject **)f;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        slots[i] = PyObject_GetAttr(span, names[i]);
        if (!slots[i]) return -1;
    }
    f->code = PyObject_GetAttr(f->status, s_status_code);
    if (!f->code) return -1;
    f->description = PyObject_GetAttr(f->status, s_description);
    return f->description ? 0 : -1;
}

static int is_context(PyObject *context) { return PyTuple_Check(context) && PyTuple_GET_SIZE(context) >= 5; }

/* One span into every column; 1 if some field is not what the SDK makes. */
static int put_span(Columns *c, PyObject *span, Py_ssize_t row, const Config *cfg) {
    Fields f = {0};
    int result = fields_read(&f, span);
    if (result) goto done;
    result = 1;
    if (!is_context(f.context)) goto done;
    PyObject *trace_id = PyTuple_GET_ITEM(f.context, 0), *span_id = PyTuple_GET_ITEM(f.context, 1);
    if (!PyLong_CheckExact(trace_id) || !PyLong_CheckExact(span_id)) goto done;
    int kind = member_index(cfg->kinds, f.kind), code = member_index(cfg->codes, f.code);
    if (kind < 0 || code < 0) goto done;
    result = -1;
    if (put_u128_hex(&c->trace_id, trace_id) < 0 || put_u64_hex(&c->span_id, span_id) < 0) goto done;
    if (f.parent == Py_None) {
        static const unsigned char zeros[8];
        if (put_hex(&c->parent_id, zeros, 8) < 0 || col_mark(&c->parent_valid, row, 0) < 0) goto done;
        c->parent_nulls++;
    } else {
        if (!is_context(f.parent) || !PyLong_CheckExact(PyTuple_GET_ITEM(f.parent, 1))) {
            result = 1;
            goto done;
        }
        if (put_u64_hex(&c->parent_id, PyTuple_GET_ITEM(f.parent, 1)) < 0) goto done;
        if (col_mark(&c->parent_valid, row, 1) < 0) goto done;
    }
    char kind_code = (char)kind, status_code = (char)code;
    if (buf_put(&c->kind, &kind_code, 1) < 0 || buf_put(&c->status, &status_code, 1) < 0) goto done;
    Py_INCREF(PyTuple_GET_ITEM(f.context, 4));
    PyList_SET_ITEM(c->trace_states, row, PyTuple_GET_ITEM(f.context, 4));
    Py_INCREF(f.scope);
    PyList_SET_ITEM(c->scopes, row, f.scope);
    Py_INCREF(f.resource);
    PyList_SET_ITEM(c->resources, row, f.resource);
    if ((result = strcol_put_optional(&c->name, f.name)) != 0) goto done;
    if ((result = strcol_put_optional(&c->message, f.description)) != 0) goto done;
    if ((result = i64col_put(&c->start, f.start)) != 0) goto done;
    if ((result = i64col_put(&c->end, f.end)) != 0) goto done;
    if ((result = put_attributes(&c->attributes, f.attributes, cfg)) != 0) goto done;
    if ((result = put_items(&c->event_offsets, &c->event_dropped, c->events, f.events, cfg)) != 0) goto done;
    result = put_items(&c->link_offsets, &c->link_dropped, c->links, f.links, cfg);
done:
    fields_clear(&f);
    return result;
}

static PyObject *columns_result(Columns *c) {
    PyObject *parent_valid = c->parent_nulls ? buf_bytes(&c->parent_valid) : (Py_INCREF(Py_None), Py_None);
    if (!parent_valid) return NULL;
    return Py_BuildValue(
        "{s:N,s:N,s:N,s:N,s:n,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:O,s:O,s:O,s:O,s:O}",
        "trace_id", buf_bytes(&c->trace_id),
        "span_id", buf_bytes(&c->span_id),
        "parent_span_id", buf_bytes(&c->parent_id),
        "parent_valid", parent_valid,
        "parent_nulls", c->parent_nulls,
        "name", strcol_result(&c->name),
        "status_message", strcol_result(&c->message),
        "kind", buf_bytes(&c->kind),
        "status_code", buf_bytes(&c->status),
        "start_time", i64col_result(&c->start),
        "end_time", i64col_result(&c->end),
        "attribute_rows", buf_bytes(&c->attributes.rows),
        "attribute_keys", strcol_result(&c->attributes.keys),
        "attribute_values", strcol_result(&c->attributes.values),
        "dropped_attributes", buf_bytes(&c->attributes.dropped),
        "event_offsets", buf_bytes(&c->event_offsets),
        "dropped_events", buf_bytes(&c->event_dropped),
        "link_offsets", buf_bytes(&c->link_offsets),
        "dropped_links", buf_bytes(&c->link_dropped),
        "events", c->events,
        "links", c->links,
        "scopes", c->scopes,
        "resources", c->resources,
        "trace_states", c->trace_states);
}

static PyObject *pack_spans(PyObject *module, PyObject *args) {
    PyObject *spans;
    Config cfg;
    if (!PyArg_ParseTuple(args, "O!OOO!O!O:pack_spans", &PyList_Type, &spans, &cfg.bounded_attributes,
                          &cfg.bounded_list, &PyTuple_Type, &cfg.kinds, &PyTuple_Type, &cfg.codes,
                          &cfg.attribute_text)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(spans);
    Columns c;
    memset(&c, 0, sizeof c);
    PyObject *result = NULL;
    c.events = PyList_New(0);
    c.links = PyList_New(0);
    c.scopes = PyList_New(n);
    c.resources = PyList_New(n);
    c.trace_states = PyList_New(n);
    if (!c.events || !c.links || !c.scopes || !c.resources || !c.trace_states) goto done;
    /* Room for a typical batch up front: growing by doubling would copy and fault in pages again. */
    if (buf_reserve(&c.trace_id, 32 * n) < 0 || buf_reserve(&c.span_id, 16 * n) < 0 ||
        buf_reserve(&c.parent_id, 16 * n) < 0 || buf_reserve(&c.start.values, 8 * n) < 0 ||
        buf_reserve(&c.end.values, 8 * n) < 0 || buf_reserve(&c.name.data, 16 * n) < 0 ||
        buf_reserve(&c.attributes.keys.data, 64 * n) < 0 ||
        buf_reserve(&c.attributes.values.data, 32 * n) < 0) {
        goto done;
    }
    if (strcol_init(&c.name) < 0 || strcol_init(&c.message) < 0 || strcol_init(&c.attributes.keys) < 0 ||
        strcol_init(&c.attributes.values) < 0 || buf_put_i32(&c.attributes.rows, 0) < 0 ||
        buf_put_i32(&c.event_offsets, 0) < 0 || buf_put_i32(&c.link_offsets, 0) < 0) {
        goto done;
    }
    for (Py_ssize_t row = 0; row < n; row++) {
        int status = put_span(&c, PyList_GET_ITEM(spans, row), row, &cfg);
        if (status < 0) {
            /* A field the SDK did not make (AttributeError, a non-int id...): the Python path decides. */
            if (!PyErr_ExceptionMatches(PyExc_AttributeError) && !PyErr_ExceptionMatches(PyExc_TypeError) &&
                !PyErr_ExceptionMatches(PyExc_OverflowError) && !PyErr_ExceptionMatches(PyExc_ValueError)) {
                goto done;
            }
            PyErr_Clear();
            status = 1;
        }
        if (status) {
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
    }
    result = columns_result(&c);
done:
    columns_free(&c);
    return result;
}

static PyMethodDef methods[] = {
    {"pack_spans", pack_spans, METH_VARARGS,
     "pack_spans(spans, BoundedAttributes, BoundedList, kinds, codes, attribute_text) -> dict | None\n\n"
     "Column buffers of a list of SDK spans, or None if a span is not one the SDK makes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "ingest._spanpack",
                                    "OpenTelemetry SDK spans to Arrow column buffers.", -1, methods};

PyMODINIT_FUNC PyInit__spanpack(void) {
    struct {
        PyObject **slot;
        const char *name;
    } names[] = {
        {&s_context, "_context"},
        {&s_parent, "_parent"},
        {&s_start_time, "_start_time"},
        {&s_end_time, "_end_time"},
        {&s_status, "_status"},
        {&s_scope, "_instrumentation_scope"},
        {&s_name, "_name"},
        {&s_kind, "_kind"},
        {&s_resource, "_resource"},
        {&s_attributes, "_attributes"},
        {&s_events, "_events"},
        {&s_links, "_links"},
        {&s_status_code, "_status_code"},
        {&s_description, "_description"},
        {&s_dict, "_dict"},
        {&s_dq, "_dq"},
        {&s_dropped, "dropped"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].name);
        if (!*names[i].slot) return NULL;
    }
    return PyModule_Create(&module);
}
