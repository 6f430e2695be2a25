/*
 * wsserver.protocol._speedups: the compiled masking accelerator.
 *
 * RFC 6455 section 5.3: "octet i of the transformed data is the XOR of octet
 * i of the original data with octet at index i modulo 4 of the masking key".
 * apply_mask() does that eight bytes at a time, against a 64-bit word holding
 * the key twice (built with memcpy(), so key octet j sits at memory offset j
 * on either byte order).  Loads and stores go through memcpy() too: any
 * alignment of the input is fine and there is no undefined behaviour (no
 * type punning of unaligned pointers), and compilers turn each memcpy() into
 * one unaligned load or store.  No alignment prologue is needed: words start
 * at offsets 0, 8, 16, ... of the data, each on key octet 0, and a byte loop
 * does the 0 to 7 bytes left at the end.
 *
 * masking.py selects this module when it imports; masking.apply_mask_python
 * and masking.PayloadBufferPython are the references it must agree with,
 * byte for byte (tests/protocol/test_masking.py runs both).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* Above this many bytes, the XOR loop runs without the GIL. */
#define RELEASE_GIL_ABOVE (64 * 1024)

static void
xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t length,
         const unsigned char key[4])
{
    unsigned char doubled[8];
    uint64_t key64, word;
    Py_ssize_t i = 0;

    memcpy(doubled, key, 4);
    memcpy(doubled + 4, key, 4);
    memcpy(&key64, doubled, 8);

    /* Every word starts at a multiple of 8, so on key octet 0.  Four words
     * per iteration: independent loads and stores, which compilers turn into
     * two 16-byte vector operations (twice the speed of one word per
     * iteration on x86-64 with GCC 12 -O3). */
    for (; i + 32 <= length; i += 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, in + i, 8);
        memcpy(&w1, in + i + 8, 8);
        memcpy(&w2, in + i + 16, 8);
        memcpy(&w3, in + i + 24, 8);
        w0 ^= key64;
        w1 ^= key64;
        w2 ^= key64;
        w3 ^= key64;
        memcpy(out + i, &w0, 8);
        memcpy(out + i + 8, &w1, 8);
        memcpy(out + i + 16, &w2, 8);
        memcpy(out + i + 24, &w3, 8);
    }
    for (; i + 8 <= length; i += 8) {
        memcpy(&word, in + i, 8);
        word ^= key64;
        memcpy(out + i, &word, 8);
    }
    /* The 0 to 7 bytes left over. */
    for (; i < length; i++) {
        out[i] = in[i] ^ key[i & 3];
    }
}

/* A new bytes object: ``length`` bytes at ``in`` XORed with ``key``. */
static PyObject *
masked_copy(const void *in, Py_ssize_t length, const unsigned char key[4])
{
    PyObject *result = PyBytes_FromStringAndSize(NULL, length);
    unsigned char *out;

    if (result == NULL || length == 0) {
        return result;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    if (length > RELEASE_GIL_ABOVE) {
        /* The caller holds a buffer export on the input, so it cannot be
         * resized or freed meanwhile; the result is not shared yet. */
        Py_BEGIN_ALLOW_THREADS
        xor_mask((const unsigned char *)in, out, length, key);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask((const unsigned char *)in, out, length, key);
    }
    return result;
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask($module, data, mask, /)\n"
"--\n"
"\n"
"XOR data with the repeated 4-byte mask (RFC 6455 section 5.3); return bytes.\n"
"\n"
"data and mask may be any bytes-like objects.  A non-contiguous memoryview\n"
"is copied to contiguous bytes first, as apply_mask_python does.  A mask\n"
"that is not exactly 4 bytes long raises ValueError.");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer mask, data;
    unsigned char key[4];
    PyObject *result, *contiguous;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "apply_mask() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }

    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes long, not %zd", mask.len);
        PyBuffer_Release(&mask);
        return NULL;
    }
    memcpy(key, mask.buf, 4);
    PyBuffer_Release(&mask);

    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) == 0) {
        result = masked_copy(data.buf, data.len, key);
        PyBuffer_Release(&data);
        return result;
    }
    if (!PyErr_ExceptionMatches(PyExc_BufferError)) {
        return NULL;  /* not bytes-like: TypeError */
    }
    /* Bytes-like but not C-contiguous (memoryview(b)[::2]): copy first. */
    PyErr_Clear();
    contiguous = PyBytes_FromObject(args[0]);
    if (contiguous == NULL) {
        return NULL;
    }
    result = masked_copy(PyBytes_AS_STRING(contiguous), PyBytes_GET_SIZE(contiguous), key);
    Py_DECREF(contiguous);
    return result;
}

/*
 * PayloadBuffer: one frame's payload, unmasked straight into the bytes object
 * that becomes the message.  A frame larger than one read arrives in pieces;
 * building the message from unmasked pieces would copy every byte twice
 * (unmask each piece, join the pieces), this copies it once.  The bytes
 * object is private to the buffer until take() hands it out, complete, so
 * writing into it (and resizing it with _PyBytes_Resize, which the C API
 * allows for "a brand new bytes object") does not break any other holder's
 * view of an immutable object.
 *
 * Memory: a payload of up to INITIAL_CAPACITY bytes is allocated whole at
 * once (an untouched allocation that large is address space: the operating
 * system commits its pages as they are written, so a peer that announces
 * 1 MiB and sends 4 KiB costs about 4 KiB of memory).  A larger payload
 * starts at INITIAL_CAPACITY and doubles as its pieces arrive, so memory
 * follows the bytes received, not the length announced (a 64 MiB header
 * alone does not reserve 64 MiB).
 */
#define INITIAL_CAPACITY (1024 * 1024)

typedef struct {
    PyObject_HEAD
    PyObject *payload;       /* bytes of `capacity` bytes, NULL once taken */
    Py_ssize_t length;       /* the payload's announced length */
    Py_ssize_t filled;
    unsigned char key[4];
} PayloadBufferObject;

static int
PayloadBuffer_init(PayloadBufferObject *self, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t length;
    Py_buffer mask;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "PayloadBuffer() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "ny*:PayloadBuffer", &length, &mask)) {
        return -1;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes long, not %zd", mask.len);
        PyBuffer_Release(&mask);
        return -1;
    }
    memcpy(self->key, mask.buf, 4);
    PyBuffer_Release(&mask);
    if (length < 0) {
        PyErr_SetString(PyExc_ValueError, "length must not be negative");
        return -1;
    }
    Py_CLEAR(self->payload);
    self->payload = PyBytes_FromStringAndSize(
        NULL, length < INITIAL_CAPACITY ? length : INITIAL_CAPACITY);
    if (self->payload == NULL) {
        return -1;
    }
    self->length = length;
    self->filled = 0;
    return 0;
}

/* Make room for `needed` bytes in all: double, at least, up to the length. */
static int
PayloadBuffer_reserve(PayloadBufferObject *self, Py_ssize_t needed)
{
    Py_ssize_t capacity = PyBytes_GET_SIZE(self->payload);

    if (needed <= capacity) {
        return 0;
    }
    capacity = capacity > self->length / 2 ? self->length : capacity * 2;
    if (capacity < needed) {
        capacity = needed;
    }
    /* On failure _PyBytes_Resize frees the object and sets it to NULL. */
    return _PyBytes_Resize(&self->payload, capacity);
}

static void
PayloadBuffer_dealloc(PayloadBufferObject *self)
{
    Py_CLEAR(self->payload);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(PayloadBuffer_unmask_doc,
"unmask($self, data, /)\n"
"--\n"
"\n"
"Unmask the next piece of the payload into the buffer.  A piece longer than\n"
"what is left raises ValueError, as does a buffer already taken.");

static PyObject *
PayloadBuffer_unmask(PayloadBufferObject *self, PyObject *arg)
{
    Py_buffer data;
    unsigned char key[4];
    unsigned char *out;
    Py_ssize_t shift, i;

    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was already taken");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (data.len > self->length - self->filled) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "more data than the payload's length");
        return NULL;
    }
    if (PayloadBuffer_reserve(self, self->filled + data.len) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    /* The piece starts at key octet (filled MOD 4). */
    shift = self->filled & 3;
    for (i = 0; i < 4; i++) {
        key[i] = self->key[(shift + i) & 3];
    }
    out = (unsigned char *)PyBytes_AS_STRING(self->payload) + self->filled;
    if (data.len > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask((const unsigned char *)data.buf, out, data.len, key);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask((const unsigned char *)data.buf, out, data.len, key);
    }
    self->filled += data.len;
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(PayloadBuffer_take_doc,
"take($self, /)\n"
"--\n"
"\n"
"Return the payload as bytes; ValueError unless every byte was written.");

static PyObject *
PayloadBuffer_take(PayloadBufferObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *payload = self->payload;

    if (payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was already taken");
        return NULL;
    }
    if (self->filled != self->length) {
        PyErr_Format(PyExc_ValueError, "payload incomplete: %zd of %zd bytes",
                     self->filled, self->length);
        return NULL;
    }
    /* Growth never passes the length, so the object is exactly full. */
    assert(PyBytes_GET_SIZE(payload) == self->length);
    self->payload = NULL;
    return payload;  /* the reference moves to the caller */
}

static PyObject *
PayloadBuffer_get_remaining(PayloadBufferObject *self, void *Py_UNUSED(closure))
{
    if (self->payload == NULL) {
        return PyLong_FromLong(0);
    }
    return PyLong_FromSsize_t(self->length - self->filled);
}

static PyMethodDef PayloadBuffer_methods[] = {
    {"unmask", (PyCFunction)PayloadBuffer_unmask, METH_O, PayloadBuffer_unmask_doc},
    {"take", (PyCFunction)PayloadBuffer_take, METH_NOARGS, PayloadBuffer_take_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef PayloadBuffer_getset[] = {
    {"remaining", (getter)PayloadBuffer_get_remaining, NULL,
     "Bytes of the payload not written yet.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(PayloadBuffer_doc,
"PayloadBuffer(length, mask, /)\n"
"--\n"
"\n"
"A frame payload of length bytes, unmasked with mask as its pieces arrive.");

static PyTypeObject PayloadBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wsserver.protocol._speedups.PayloadBuffer",
    .tp_basicsize = sizeof(PayloadBufferObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PayloadBuffer_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PayloadBuffer_init,
    .tp_dealloc = (destructor)PayloadBuffer_dealloc,
    .tp_methods = PayloadBuffer_methods,
    .tp_getset = PayloadBuffer_getset,
};

static int
speedups_exec(PyObject *module)
{
    if (PyType_Ready(&PayloadBufferType) < 0) {
        return -1;
    }
    Py_INCREF(&PayloadBufferType);
    if (PyModule_AddObject(module, "PayloadBuffer", (PyObject *)&PayloadBufferType) < 0) {
        Py_DECREF(&PayloadBufferType);
        return -1;
    }
    return 0;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wsserver.protocol._speedups",
    .m_doc = "Compiled masking accelerators (see wsserver.protocol.masking).",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
