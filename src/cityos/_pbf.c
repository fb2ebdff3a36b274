/* cityos._pbf: decode one OSM PBF PrimitiveBlock (the uncompressed payload of an OSMData blob)
 * into flat arrays, without holding the GIL while it parses.
 *
 * The format is https://wiki.openstreetmap.org/wiki/PBF_Format (osmformat.proto): a string
 * table, then groups of DenseNodes, Nodes, Ways and Relations, ids and coordinates delta- and
 * zigzag-coded varints. Coordinates come out as libosmium keeps them: the fixed-point integer
 * in 1e-7 degrees, (offset + granularity * value) / 100 with C's truncating division;
 * timestamps in seconds.
 *
 * decode(block: bytes) -> dict of bytes (arrays, native byte order) and a list of strings:
 *   strings            list[bytes], the block's string table
 *   node_id  int64     node_x, node_y int32 (1e-7 degree)
 *   node_ts  int64     seconds, of the nodes with tags only (in order)
 *   ntag_obj int32     ntag_k, ntag_v int32 (string-table indices), one entry per node tag
 *   way_id   int64     way_ts int64   way_n int32 (nodes per way)   way_refs int64
 *   wtag_obj, wtag_k, wtag_v int32
 *   rel_id   int64     rel_ts int64   rel_n int32 (members per relation)
 *   mem_id   int64     mem_type int8 (0 node, 1 way, 2 relation)   mem_role int32
 *   rtag_obj, rtag_k, rtag_v int32
 * A damaged block raises ValueError naming what is wrong.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

typedef struct {
    char *p;
    size_t n;   /* bytes used */
    size_t cap; /* bytes allocated */
} buf_t;

static int buf_reserve(buf_t *b, size_t more) {
    if (b->n + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

#define PUSH(b, type, value)                                               \
    do {                                                                   \
        if (buf_reserve(&(b), sizeof(type))) return "out of memory";       \
        type v__ = (type)(value);                                          \
        memcpy((b).p + (b).n, &v__, sizeof(type));                         \
        (b).n += sizeof(type);                                             \
    } while (0)

enum {
    STRINGS_OFF, /* offsets (int64 pairs: start, length) into the block */
    NODE_ID, NODE_X, NODE_Y, NODE_TS, NTAG_OBJ, NTAG_K, NTAG_V,
    WAY_ID, WAY_TS, WAY_N, WAY_REFS, WTAG_OBJ, WTAG_K, WTAG_V,
    REL_ID, REL_TS, REL_N, MEM_ID, MEM_TYPE, MEM_ROLE, RTAG_OBJ, RTAG_K, RTAG_V,
    NBUF
};

static const char *NAMES[NBUF] = {
    "strings",
    "node_id", "node_x", "node_y", "node_ts", "ntag_obj", "ntag_k", "ntag_v",
    "way_id", "way_ts", "way_n", "way_refs", "wtag_obj", "wtag_k", "wtag_v",
    "rel_id", "rel_ts", "rel_n", "mem_id", "mem_type", "mem_role", "rtag_obj", "rtag_k", "rtag_v",
};

typedef struct {
    buf_t b[NBUF];
    int64_t granularity, lat_offset, lon_offset, date_granularity;
    int32_t nodes, ways, rels; /* objects so far: the index a tag entry refers to */
} out_t;

typedef struct {
    const uint8_t *p, *end;
} rd_t;

static int varint(rd_t *r, uint64_t *out) {
    uint64_t v = 0;
    int shift = 0;
    while (r->p < r->end) {
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
        shift += 7;
        if (shift > 63) return -1;
    }
    return -1;
}

static inline int64_t zigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* one field: its number, wire type and, for length-delimited ones, the sub-reader */
typedef struct {
    uint32_t num, wire;
    uint64_t value; /* varint or fixed value */
    rd_t sub;       /* wire type 2 */
} field_t;

static int next_field(rd_t *r, field_t *f) {
    uint64_t key;
    if (varint(r, &key)) return -1;
    f->value = 0;
    f->sub.p = f->sub.end = NULL;
    f->num = (uint32_t)(key >> 3);
    f->wire = (uint32_t)(key & 7);
    switch (f->wire) {
    case 0:
        return varint(r, &f->value);
    case 1:
        if (r->end - r->p < 8) return -1;
        r->p += 8;
        return 0;
    case 2: {
        uint64_t len;
        if (varint(r, &len) || (uint64_t)(r->end - r->p) < len) return -1;
        f->sub.p = r->p;
        f->sub.end = r->p + len;
        r->p += len;
        return 0;
    }
    case 5:
        if (r->end - r->p < 4) return -1;
        r->p += 4;
        return 0;
    default:
        return -1;
    }
}

/* the values of a repeated varint field, packed (wire type 2) or one at a time (wire type 0) */
typedef struct {
    rd_t r;
    int single;
    uint64_t value;
} packed_t;

static void packed_init(packed_t *it, const field_t *f) {
    it->value = 0;
    if (f->num == 0) { /* the field is absent: no values */
        it->single = 2;
        it->r.p = it->r.end = NULL;
        return;
    }
    it->single = f->wire == 0;
    it->value = f->value;
    if (!it->single) it->r = f->sub;
    else it->r.p = it->r.end = NULL;
}

/* 1: a value, 0: none left, -1: damaged */
static int packed_next(packed_t *it, uint64_t *v) {
    if (it->single) {
        if (it->single == 2) return 0;
        it->single = 2;
        *v = it->value;
        return 1;
    }
    if (it->r.p >= it->r.end) return 0;
    return varint(&it->r, v) ? -1 : 1;
}

static int64_t fixed(int64_t offset, int64_t gran, int64_t value) {
    return (offset + gran * value) / 100; /* nanodegrees to 1e-7 degrees, truncating like C++ */
}

static const char *dense(rd_t r, out_t *o) {
    field_t f;
    field_t ids = {0}, lats = {0}, lons = {0}, kv = {0}, ts = {0};
    int has_ids = 0, has_lat = 0, has_lon = 0;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged DenseNodes";
        if (f.num == 1) ids = f, has_ids = 1;
        else if (f.num == 8) lats = f, has_lat = 1;
        else if (f.num == 9) lons = f, has_lon = 1;
        else if (f.num == 10) kv = f;
        else if (f.num == 5 && f.wire == 2) {
            rd_t info = f.sub;
            field_t g;
            while (info.p < info.end) {
                if (next_field(&info, &g)) return "damaged DenseInfo";
                if (g.num == 2) ts = g;
            }
        }
    }
    if (!has_ids) return NULL;
    if (!has_lat || !has_lon) return "DenseNodes without coordinates";
    packed_t pi, pa, po, pk, pt;
    packed_init(&pi, &ids);
    packed_init(&pa, &lats);
    packed_init(&po, &lons);
    packed_init(&pk, &kv);
    packed_init(&pt, &ts);
    int64_t id = 0, lat = 0, lon = 0, t = 0;
    uint64_t v;
    int s;
    while ((s = packed_next(&pi, &v)) == 1) {
        id += zigzag(v);
        if (packed_next(&pa, &v) != 1) return "DenseNodes with fewer latitudes than ids";
        lat += zigzag(v);
        if (packed_next(&po, &v) != 1) return "DenseNodes with fewer longitudes than ids";
        lon += zigzag(v);
        if (packed_next(&pt, &v) == 1) t += zigzag(v);
        PUSH(o->b[NODE_ID], int64_t, id);
        PUSH(o->b[NODE_X], int32_t, fixed(o->lon_offset, o->granularity, lon));
        PUSH(o->b[NODE_Y], int32_t, fixed(o->lat_offset, o->granularity, lat));
        size_t before = o->b[NTAG_OBJ].n;
        for (;;) { /* keys_vals may stop early when the last nodes have no tags */
            uint64_t k, val;
            int a = packed_next(&pk, &k);
            if (a == 0) break;
            if (a < 0) return "damaged DenseNodes keys_vals";
            if (k == 0) break;
            if (packed_next(&pk, &val) != 1) return "DenseNodes key without value";
            PUSH(o->b[NTAG_OBJ], int32_t, o->nodes);
            PUSH(o->b[NTAG_K], int32_t, k);
            PUSH(o->b[NTAG_V], int32_t, val);
        }
        if (o->b[NTAG_OBJ].n > before) /* the timestamps of tagged nodes only */
            PUSH(o->b[NODE_TS], int64_t, t * o->date_granularity / 1000);
        o->nodes++;
    }
    if (s < 0) return "damaged DenseNodes ids";
    return NULL;
}

/* keys (2), vals (3) and info (4) are common to Node, Way and Relation */
static const char *tags(const field_t *keys, const field_t *vals, int32_t obj, buf_t *bo,
                        buf_t *bk, buf_t *bv) {
    packed_t pk, pv;
    packed_init(&pk, keys);
    packed_init(&pv, vals);
    uint64_t k, v;
    int a;
    while ((a = packed_next(&pk, &k)) == 1) {
        if (packed_next(&pv, &v) != 1) return "key without value";
        PUSH(*bo, int32_t, obj);
        PUSH(*bk, int32_t, k);
        PUSH(*bv, int32_t, v);
    }
    return a < 0 ? "damaged keys" : NULL;
}

static const char *info_ts(rd_t r, const out_t *o, int64_t *ts) {
    field_t f;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged Info";
        if (f.num == 2 && f.wire == 0) *ts = (int64_t)f.value * o->date_granularity / 1000;
    }
    return NULL;
}

static const char *node(rd_t r, out_t *o) {
    field_t f, keys = {0}, vals = {0};
    int64_t id = 0, lat = 0, lon = 0, ts = 0;
    const char *err;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged Node";
        if (f.num == 1) id = zigzag(f.value);
        else if (f.num == 2) keys = f;
        else if (f.num == 3) vals = f;
        else if (f.num == 4 && f.wire == 2) {
            if ((err = info_ts(f.sub, o, &ts))) return err;
        } else if (f.num == 8) lat = zigzag(f.value);
        else if (f.num == 9) lon = zigzag(f.value);
    }
    size_t before = o->b[NTAG_OBJ].n;
    if ((err = tags(&keys, &vals, o->nodes, &o->b[NTAG_OBJ], &o->b[NTAG_K], &o->b[NTAG_V])))
        return err;
    PUSH(o->b[NODE_ID], int64_t, id);
    PUSH(o->b[NODE_X], int32_t, fixed(o->lon_offset, o->granularity, lon));
    PUSH(o->b[NODE_Y], int32_t, fixed(o->lat_offset, o->granularity, lat));
    if (o->b[NTAG_OBJ].n > before) PUSH(o->b[NODE_TS], int64_t, ts);
    o->nodes++;
    return NULL;
}

static const char *way(rd_t r, out_t *o) {
    field_t f, keys = {0}, vals = {0}, refs = {0};
    int64_t id = 0, ts = 0;
    int has_refs = 0;
    const char *err;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged Way";
        if (f.num == 1) id = (int64_t)f.value;
        else if (f.num == 2) keys = f;
        else if (f.num == 3) vals = f;
        else if (f.num == 4 && f.wire == 2) {
            if ((err = info_ts(f.sub, o, &ts))) return err;
        } else if (f.num == 8) refs = f, has_refs = 1;
    }
    if ((err = tags(&keys, &vals, o->ways, &o->b[WTAG_OBJ], &o->b[WTAG_K], &o->b[WTAG_V])))
        return err;
    int32_t n = 0;
    if (has_refs) {
        packed_t p;
        packed_init(&p, &refs);
        uint64_t v;
        int64_t ref = 0;
        int a;
        while ((a = packed_next(&p, &v)) == 1) {
            ref += zigzag(v);
            PUSH(o->b[WAY_REFS], int64_t, ref);
            n++;
        }
        if (a < 0) return "damaged Way refs";
    }
    PUSH(o->b[WAY_ID], int64_t, id);
    PUSH(o->b[WAY_TS], int64_t, ts);
    PUSH(o->b[WAY_N], int32_t, n);
    o->ways++;
    return NULL;
}

static const char *relation(rd_t r, out_t *o) {
    field_t f, keys = {0}, vals = {0}, roles = {0}, ids = {0}, types = {0};
    int64_t id = 0, ts = 0;
    int has_ids = 0;
    const char *err;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged Relation";
        if (f.num == 1) id = (int64_t)f.value;
        else if (f.num == 2) keys = f;
        else if (f.num == 3) vals = f;
        else if (f.num == 4 && f.wire == 2) {
            if ((err = info_ts(f.sub, o, &ts))) return err;
        } else if (f.num == 8) roles = f;
        else if (f.num == 9) ids = f, has_ids = 1;
        else if (f.num == 10) types = f;
    }
    if ((err = tags(&keys, &vals, o->rels, &o->b[RTAG_OBJ], &o->b[RTAG_K], &o->b[RTAG_V])))
        return err;
    int32_t n = 0;
    if (has_ids) {
        packed_t pi, pr, pt;
        packed_init(&pi, &ids);
        packed_init(&pr, &roles); /* absent ones give no values */
        packed_init(&pt, &types);
        uint64_t v;
        int64_t mem = 0;
        int a;
        while ((a = packed_next(&pi, &v)) == 1) {
            mem += zigzag(v);
            uint64_t role = 0, type = 0;
            if (packed_next(&pr, &role) < 0) return "damaged Relation roles";
            if (packed_next(&pt, &type) < 0) return "damaged Relation types";
            if (type > 2) return "Relation member of unknown type";
            PUSH(o->b[MEM_ID], int64_t, mem);
            PUSH(o->b[MEM_TYPE], int8_t, type);
            PUSH(o->b[MEM_ROLE], int32_t, role);
            n++;
        }
        if (a < 0) return "damaged Relation members";
    }
    PUSH(o->b[REL_ID], int64_t, id);
    PUSH(o->b[REL_TS], int64_t, ts);
    PUSH(o->b[REL_N], int32_t, n);
    o->rels++;
    return NULL;
}

static const char *group(rd_t r, out_t *o) {
    field_t f;
    const char *err = NULL;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged PrimitiveGroup";
        if (f.wire != 2) continue;
        if (f.num == 1) err = node(f.sub, o);
        else if (f.num == 2) err = dense(f.sub, o);
        else if (f.num == 3) err = way(f.sub, o);
        else if (f.num == 4) err = relation(f.sub, o);
        if (err) return err;
    }
    return NULL;
}

static const char *block(const uint8_t *data, size_t size, out_t *o) {
    rd_t r = {data, data + size};
    field_t f;
    /* the block's settings may follow its groups: read them first */
    o->granularity = 100;
    o->lat_offset = o->lon_offset = 0;
    o->date_granularity = 1000;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged PrimitiveBlock";
        if (f.num == 17 && f.wire == 0) o->granularity = (int64_t)f.value;
        else if (f.num == 18 && f.wire == 0) o->date_granularity = (int64_t)f.value;
        else if (f.num == 19 && f.wire == 0) o->lat_offset = (int64_t)f.value;
        else if (f.num == 20 && f.wire == 0) o->lon_offset = (int64_t)f.value;
        else if (f.num == 1 && f.wire == 2) {
            rd_t s = f.sub;
            field_t g;
            while (s.p < s.end) {
                if (next_field(&s, &g)) return "damaged StringTable";
                if (g.num != 1 || g.wire != 2) continue;
                PUSH(o->b[STRINGS_OFF], int64_t, g.sub.p - data);
                PUSH(o->b[STRINGS_OFF], int64_t, g.sub.end - g.sub.p);
            }
        }
    }
    r.p = data;
    while (r.p < r.end) {
        if (next_field(&r, &f)) return "damaged PrimitiveBlock";
        if (f.num == 2 && f.wire == 2) {
            const char *err = group(f.sub, o);
            if (err) return err;
        }
    }
    return NULL;
}

static PyObject *decode(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    out_t o;
    memset(&o, 0, sizeof o);
    const char *err;
    Py_BEGIN_ALLOW_THREADS
    err = block((const uint8_t *)view.buf, (size_t)view.len, &o);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (err) {
        PyErr_Format(PyExc_ValueError, "%s", err);
        goto done;
    }
    result = PyDict_New();
    if (!result) goto done;
    size_t nstr = o.b[STRINGS_OFF].n / (2 * sizeof(int64_t));
    PyObject *strings = PyList_New((Py_ssize_t)nstr);
    if (!strings || PyDict_SetItemString(result, NAMES[0], strings) < 0) {
        Py_XDECREF(strings);
        Py_CLEAR(result);
        goto done;
    }
    Py_DECREF(strings);
    const int64_t *so = (const int64_t *)o.b[STRINGS_OFF].p;
    for (size_t i = 0; i < nstr; i++) {
        PyObject *s = PyBytes_FromStringAndSize((const char *)view.buf + so[2 * i],
                                                (Py_ssize_t)so[2 * i + 1]);
        if (!s) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(strings, (Py_ssize_t)i, s);
    }
    for (int i = 1; i < NBUF; i++) {
        PyObject *b = PyBytes_FromStringAndSize(o.b[i].p ? o.b[i].p : "", (Py_ssize_t)o.b[i].n);
        if (!b || PyDict_SetItemString(result, NAMES[i], b) < 0) {
            Py_XDECREF(b);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(b);
    }
done:
    for (int i = 0; i < NBUF; i++) free(o.b[i].p);
    PyBuffer_Release(&view);
    return result;
}

/* ---- node locations of way nodes ------------------------------------------------------ */

/* locate(node_id, node_x, node_y, refs, x_out, y_out, ok_out): for each ref its node's
 * location (ok 1) or none (ok 0: not in the file, or outside -180..180 / -90..90). node_id
 * ascending. A table of where each block of ids starts (blocks of about one node) narrows
 * every binary search to a step or two. */
static int32_t valid_location(int32_t x, int32_t y) {
    return x >= -1800000000 && x <= 1800000000 && y >= -900000000 && y <= 900000000;
}

static PyObject *locate(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer ids, xs, ys, refs, xo, yo, oko;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*", &ids, &xs, &ys, &refs, &xo, &yo, &oko))
        return NULL;
    const int64_t *id = ids.buf, *ref = refs.buf;
    const int32_t *x = xs.buf, *y = ys.buf;
    int32_t *ox = xo.buf, *oy = yo.buf;
    uint8_t *ok = oko.buf;
    Py_ssize_t n = ids.len / 8, m = refs.len / 8;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    if (n > 0) {
        int64_t lo_id = id[0], hi_id = id[n - 1];
        /* blocks of 2^bits ids, about one node each: a search is a step or two */
        int bits = 0;
        while (bits < 40 && ((hi_id - lo_id) >> (bits + 1)) >= n) bits++;
        int64_t blocks = ((hi_id - lo_id) >> bits) + 2;
        int64_t *start = malloc(sizeof(int64_t) * (size_t)blocks);
        if (!start) failed = 1;
        else {
            int64_t b = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                int64_t k = (id[i] - lo_id) >> bits;
                while (b <= k) start[b++] = i;
            }
            while (b < blocks) start[b++] = n;
            for (Py_ssize_t j = 0; j < m; j++) {
                int64_t r = ref[j];
                ok[j] = 0;
                ox[j] = oy[j] = 0;
                if (r < lo_id || r > hi_id) continue;
                int64_t k = (r - lo_id) >> bits;
                int64_t a = start[k], e = start[k + 1];
                while (a < e) {
                    int64_t mid = a + (e - a) / 2;
                    if (id[mid] < r) a = mid + 1;
                    else e = mid;
                }
                if (a < n && id[a] == r && valid_location(x[a], y[a])) {
                    ok[j] = 1;
                    ox[j] = x[a];
                    oy[j] = y[a];
                }
            }
            free(start);
        }
    } else {
        for (Py_ssize_t j = 0; j < m; j++) ok[j] = 0, ox[j] = oy[j] = 0;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ids); PyBuffer_Release(&xs); PyBuffer_Release(&ys);
    PyBuffer_Release(&refs); PyBuffer_Release(&xo); PyBuffer_Release(&yo);
    PyBuffer_Release(&oko);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- closed rings in libosmium's form ------------------------------------------------------ */

static inline int64_t cross(int64_t ox, int64_t oy, int64_t ax, int64_t ay, int64_t bx,
                            int64_t by) {
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox);
}

static inline int sgn(int64_t v) { return (v > 0) - (v < 0); }

/* whether q lies on segment p-r, given the three are collinear */
static inline int on_segment(int64_t px, int64_t py, int64_t qx, int64_t qy, int64_t rx,
                             int64_t ry) {
    return qx >= (px < rx ? px : rx) && qx <= (px > rx ? px : rx) && qy >= (py < ry ? py : ry) &&
           qy <= (py > ry ? py : ry);
}

static int segments_meet(const int32_t *x, const int32_t *y, int a, int b, int c, int d) {
    int64_t d1 = cross(x[c], y[c], x[d], y[d], x[a], y[a]);
    int64_t d2 = cross(x[c], y[c], x[d], y[d], x[b], y[b]);
    int64_t d3 = cross(x[a], y[a], x[b], y[b], x[c], y[c]);
    int64_t d4 = cross(x[a], y[a], x[b], y[b], x[d], y[d]);
    if (sgn(d1) * sgn(d2) < 0 && sgn(d3) * sgn(d4) < 0) return 1;
    if (d1 == 0 && on_segment(x[c], y[c], x[a], y[a], x[d], y[d])) return 1;
    if (d2 == 0 && on_segment(x[c], y[c], x[b], y[b], x[d], y[d])) return 1;
    if (d3 == 0 && on_segment(x[a], y[a], x[c], y[c], x[b], y[b])) return 1;
    if (d4 == 0 && on_segment(x[a], y[a], x[d], y[d], x[b], y[b])) return 1;
    return 0;
}

/* 1: the ring of m distinct-in-a-row vertices (not closed here) is simple; exact arithmetic.
 * Non-adjacent edges must not meet at all; adjacent ones only at their shared vertex (they
 * must not fold back onto each other). */
static int ring_simple(const int32_t *x, const int32_t *y, int m) {
    for (int i = 0; i < m; i++) {
        int i2 = (i + 1) % m;
        /* adjacent: edge i and i+1 share vertex i2; folding back means the next vertex lies
         * on edge i, or the previous one on edge i+1 */
        int n2 = (i + 2) % m;
        if (cross(x[i], y[i], x[i2], y[i2], x[n2], y[n2]) == 0 &&
            (on_segment(x[i], y[i], x[n2], y[n2], x[i2], y[i2]) ||
             on_segment(x[i2], y[i2], x[i], y[i], x[n2], y[n2])))
            return 0;
        for (int j = i + 2; j < m; j++) {
            if (i == 0 && j == m - 1) continue; /* adjacent through the closing vertex */
            if (segments_meet(x, y, i, i2, j, (j + 1) % m)) return 0;
        }
    }
    return 1;
}

/* rings(x, y, src, off, xy_out, state_out): ring r's vertices are x, y[src[r]:] (int32, with
 * the closing vertex; off[r + 1] - off[r] of them, off: int64), written to xy_out[off[r]:]
 * (float64 pairs) turned counter-clockwise and starting at their lexicographically smallest
 * vertex, closed again. Slices of src, state_out and off (n + 1) give the rings of a slice, so
 * threads can share the work.
 * state: 0 simple, 1 a location twice in a row (libosmium's to judge), 2 not simple, 3 too
 * many vertices to test here (GEOS's to test). */
#define MAX_TESTED 256

static PyObject *rings(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer xs, ys, srcs, offs, out, st;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*", &xs, &ys, &srcs, &offs, &out, &st)) return NULL;
    const int32_t *x = xs.buf, *y = ys.buf;
    const int64_t *off = offs.buf, *src = srcs.buf;
    double *xy = out.buf;
    int8_t *state = st.buf;
    Py_ssize_t n = offs.len / 8 - 1;
    if (srcs.len / 8 < n || st.len < n) {
        PyBuffer_Release(&xs); PyBuffer_Release(&ys); PyBuffer_Release(&srcs);
        PyBuffer_Release(&offs); PyBuffer_Release(&out); PyBuffer_Release(&st);
        PyErr_SetString(PyExc_ValueError, "rings: src and state need one entry per ring");
        return NULL;
    }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    int32_t *rx = malloc(sizeof(int32_t) * MAX_TESTED), *ry = malloc(sizeof(int32_t) * MAX_TESTED);
    if (!rx || !ry) failed = 1;
    for (Py_ssize_t r = 0; r < n && !failed; r++) {
        int64_t a = off[r];
        int m = (int)(off[r + 1] - a) - 1; /* vertices without the closing one */
        const int32_t *px = x + src[r], *py = y + src[r];
        int repeat = 0, first = 0;
        __int128 twice = 0;
        for (int i = 0; i < m; i++) {
            int j = (i + 1) % m;
            if (px[i] == px[j] && py[i] == py[j]) repeat = 1;
            twice += (__int128)px[i] * py[j] - (__int128)px[j] * py[i];
            if (px[i] < px[first] || (px[i] == px[first] && py[i] < py[first])) first = i;
        }
        int cw = twice < 0;
        double *o = xy + 2 * a;
        for (int k = 0; k < m; k++) {
            int i = cw ? (first - k + m) % m : (first + k) % m;
            o[2 * k] = px[i] / 1e7;
            o[2 * k + 1] = py[i] / 1e7;
            if (m <= MAX_TESTED) rx[k] = px[i], ry[k] = py[i];
        }
        o[2 * m] = o[0];
        o[2 * m + 1] = o[1];
        if (repeat) state[r] = 1;
        else if (m > MAX_TESTED) state[r] = 3;
        else state[r] = ring_simple(rx, ry, m) ? 0 : 2;
    }
    free(rx);
    free(ry);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&xs); PyBuffer_Release(&ys); PyBuffer_Release(&srcs);
    PyBuffer_Release(&offs); PyBuffer_Release(&out); PyBuffer_Release(&st);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- WKB of one-ring polygons ------------------------------------------------------------- */

/* polygon_wkb(xy, ring_at, starts, buf, kind): the little-endian WKB of geometry i (points
 * xy[ring_at[i]:ring_at[i + 1]], float64 pairs) written at buf[starts[i]:], what GEOS writes:
 * kind 3, a polygon of that one ring (byte order 1, type 3, one ring, its point count, the
 * points); kind 2, a line (byte order 1, type 2, point count, points). */
static PyObject *polygon_wkb(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer xyb, ringb, startb, out;
    int kind = 3;
    if (!PyArg_ParseTuple(args, "y*y*y*w*|i", &xyb, &ringb, &startb, &out, &kind)) return NULL;
    const double *xy = xyb.buf;
    const int64_t *ring = ringb.buf, *start = startb.buf;
    uint8_t *buf = out.buf;
    Py_ssize_t n = startb.len / 8;
    static const uint8_t polygon[9] = {1, 3, 0, 0, 0, 1, 0, 0, 0}, line[5] = {1, 2, 0, 0, 0};
    const uint8_t *head = kind == 2 ? line : polygon;
    size_t h = kind == 2 ? 5 : 9;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t *p = buf + start[i];
        uint32_t points = (uint32_t)(ring[i + 1] - ring[i]);
        memcpy(p, head, h);
        memcpy(p + h, &points, 4); /* little-endian machines only: checked in Python */
        memcpy(p + h + 4, xy + 2 * ring[i], 16 * (size_t)points);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&xyb); PyBuffer_Release(&ringb); PyBuffer_Release(&startb);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* copy_ranges(src, lo, hi, out, itemsize): the items src[lo[i]:hi[i]] (items of itemsize
 * bytes; lo, hi int64) for every i, one range after the other in out (NumPy's
 * src[concatenated aranges], without the index array). */
static PyObject *copy_ranges(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer sb, lb, hb, ob;
    Py_ssize_t item;
    if (!PyArg_ParseTuple(args, "y*y*y*w*n", &sb, &lb, &hb, &ob, &item)) return NULL;
    const char *src = sb.buf;
    const int64_t *lo = lb.buf, *hi = hb.buf;
    char *out = ob.buf;
    Py_ssize_t n = lb.len / 8, size = sb.len, room = ob.len;
    int bad = hb.len / 8 != n || item <= 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        Py_ssize_t a = (Py_ssize_t)lo[i] * item, b = (Py_ssize_t)hi[i] * item;
        if (a < 0 || b < a || b > size || at + (b - a) > room) {
            bad = 1;
            break;
        }
        memcpy(out + at, src + a, (size_t)(b - a));
        at += b - a;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&sb); PyBuffer_Release(&lb); PyBuffer_Release(&hb); PyBuffer_Release(&ob);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "copy_ranges: a range outside src or out");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* part_sums(x, y, at, out, what): one number per part x, y[at[k]:at[k + 1]] (float64).
 * what 0, a line's length GEOS's way: the segments' sqrt(dx*dx + dy*dy) summed one after the
 * other. what 1, the unsigned area of a ring given without its closing vertex (the first one
 * again), by GEOS's shoelace form on the closed ring p0..pm (pm = p0):
 * |sum over i = 1..m-1 of (x_i - x_0) * (y_{i-1} - y_{i+1})| / 2, the terms added one after the
 * other as NumPy's bincount adds them (cityos.measure._ring_areas). */
static PyObject *part_sums(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer xb, yb, ab, out;
    int what;
    if (!PyArg_ParseTuple(args, "y*y*y*w*i", &xb, &yb, &ab, &out, &what)) return NULL;
    const double *x = xb.buf, *y = yb.buf;
    const int64_t *at = ab.buf;
    double *sum = out.buf;
    Py_ssize_t n = ab.len / 8 - 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t a = at[k], m = at[k + 1] - a;
        const double *px = x + a, *py = y + a;
        double total = 0.0;
        if (what == 0) {
            for (int64_t i = 1; i < m; i++) {
                double dx = px[i] - px[i - 1], dy = py[i] - py[i - 1];
                total += sqrt(dx * dx + dy * dy);
            }
        } else {
            for (int64_t i = 1; i < m; i++) {
                double next = i + 1 < m ? py[i + 1] : py[0];
                total += (px[i] - px[0]) * (py[i - 1] - next);
            }
            total = fabs(total) / 2.0;
        }
        sum[k] = total;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&xb); PyBuffer_Release(&yb); PyBuffer_Release(&ab); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* prefixed_ids(prefix, ids, offsets_out, data_out) -> used: the strings prefix + decimal id,
 * one after the other in data_out, as Arrow's string layout (int32 offsets, n + 1 of them).
 * data_out holds at least n * (len(prefix) + 20) bytes; the caller checks that fits int32. */
static PyObject *prefixed_ids(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer pb, ib, ob, db;
    if (!PyArg_ParseTuple(args, "y*y*w*w*", &pb, &ib, &ob, &db)) return NULL;
    const char *prefix = pb.buf;
    Py_ssize_t plen = pb.len, n = ib.len / 8;
    const int64_t *ids = ib.buf;
    int32_t *off = ob.buf;
    char *data = db.buf;
    int32_t at = 0;
    Py_BEGIN_ALLOW_THREADS
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(data + at, prefix, (size_t)plen);
        at += (int32_t)plen;
        char digits[24];
        int k = 0;
        int64_t v = ids[i];
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        do { digits[k++] = (char)('0' + u % 10); u /= 10; } while (u);
        if (v < 0) digits[k++] = '-';
        while (k) data[at++] = digits[--k];
        off[i + 1] = at;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&pb); PyBuffer_Release(&ib); PyBuffer_Release(&ob); PyBuffer_Release(&db);
    return PyLong_FromLong((long)at);
}

static PyMethodDef METHODS[] = {
    {"prefixed_ids", prefixed_ids, METH_VARARGS,
     "prefixed_ids(prefix, ids, offsets_out, data_out) -> used: prefix + each id as Arrow strings"},
    {"copy_ranges", copy_ranges, METH_VARARGS,
     "copy_ranges(src, lo, hi, out, itemsize): the ranges src[lo[i]:hi[i]], one after the other"},
    {"part_sums", part_sums, METH_VARARGS,
     "part_sums(x, y, at, out, what): per part, a line's length (0) or an open ring's area (1)"},
    {"polygon_wkb", polygon_wkb, METH_VARARGS,
     "polygon_wkb(xy, ring_at, starts, buf): one-ring polygons' WKB written into buf"},
    {"decode", decode, METH_O,
     "decode(block) -> dict: one uncompressed OSM PBF PrimitiveBlock as flat arrays"},
    {"locate", locate, METH_VARARGS,
     "locate(node_id, node_x, node_y, refs, x_out, y_out, ok_out): way node locations"},
    {"rings", rings, METH_VARARGS,
     "rings(x, y, src, off, xy_out, state_out): closed rings in libosmium's form, tested simple"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "cityos._pbf", "OSM PBF PrimitiveBlock decoder (flat arrays).", -1,
    METHODS, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pbf(void) { return PyModule_Create(&MODULE); }
