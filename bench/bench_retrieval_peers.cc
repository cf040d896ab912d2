/*
 * bench_retrieval_peers.cc -- hnswlib for bench_retrieval.c, behind three
 * C functions, so that the retrieval benchmark (a C program) can time the
 * peer vector index on the same vectors and queries as our vector leg.
 *
 * DESIGN.  hnswlib is header-only C++; this file is compiled into the
 * bench_retrieval executable when CMake finds the headers (BR_WITH_HNSWLIB
 * is then defined for bench_retrieval.c).  The index works in inner-product
 * space on the unit vectors the engine stores, like ours; it is built
 * single-threaded.  The declarations below are repeated in
 * bench_retrieval.c: the two files are one program and share no header.
 *
 * hnswlib's prefetches read one entry past the end of a link list, which
 * AddressSanitizer reports; the benchmarks are not part of the sanitizer
 * builds (DM_BUILD_BENCH=OFF there).
 *
 * Benchmarks are tools, not engine code: plain new/delete, abort on error.
 */
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <hnswlib/hnswlib.h>

extern "C" {
typedef struct br_hnswlib br_hnswlib;
br_hnswlib *br_hnswlib_build(const float *vecs, size_t n, uint32_t dim, uint32_t m,
                             uint32_t ef_construction);
void br_hnswlib_set_ef(br_hnswlib *h, uint32_t ef);
uint64_t br_hnswlib_search(br_hnswlib *h, const float *q, uint32_t k, uint32_t *n_out);
void br_hnswlib_free(br_hnswlib *h);
}

struct br_hnswlib {
    hnswlib::InnerProductSpace space;
    hnswlib::HierarchicalNSW<float> *index;

    explicit br_hnswlib(uint32_t dim) : space(dim), index(nullptr) {}
};

/* br_hnswlib_build -- an index of the n rows of vecs (dim floats each),
 * labelled by row number.  The rows are copied. */
extern "C" br_hnswlib *br_hnswlib_build(const float *vecs, size_t n, uint32_t dim, uint32_t m,
                                        uint32_t ef_construction)
{
    br_hnswlib *h = new br_hnswlib(dim);
    h->index = new hnswlib::HierarchicalNSW<float>(&h->space, n ? n : 1, m, ef_construction,
                                                   100);
    for (size_t i = 0; i < n; i++)
        h->index->addPoint(vecs + i * dim, static_cast<hnswlib::labeltype>(i));
    return h;
}

extern "C" void br_hnswlib_set_ef(br_hnswlib *h, uint32_t ef)
{
    h->index->setEf(ef);
}

/* br_hnswlib_search -- the k nearest rows of q; *n_out receives how many
 * came back.  Returns the sum of their labels, which the caller keeps so
 * that the work cannot be optimised away. */
extern "C" uint64_t br_hnswlib_search(br_hnswlib *h, const float *q, uint32_t k,
                                      uint32_t *n_out)
{
    auto pq = h->index->searchKnn(q, k);
    uint64_t sum = 0;
    *n_out = static_cast<uint32_t>(pq.size());
    while (!pq.empty()) {
        sum += pq.top().second;
        pq.pop();
    }
    return sum;
}

extern "C" void br_hnswlib_free(br_hnswlib *h)
{
    if (!h)
        return;
    delete h->index;
    delete h;
}
