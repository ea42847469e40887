/* sim_replay — serves a recorded response (record.h) to every POST on the recorded path:
 * the recorded status and content type, then each chunk's bytes as one write, sent when
 * its t_ms has passed since the request arrived. The request body is not looked at. */
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define READER_BLOCK (64u << 10)

static ssize_t reader(void *cls, uint64_t offset, char *buf, size_t max)
{
    sim_conn *c = cls;
    const ph_record *rec = &c->srv->replay;
    (void)offset;
    while (c->out_off >= c->out.len) {
        if (c->replay_next >= rec->nchunks)
            return MHD_CONTENT_READER_END_OF_STREAM;
        const ph_record_chunk *ch = &rec->chunks[c->replay_next++];
        if (sim_conn_sleep(c, c->t0 + ch->t_ms / 1e3 - sim_now()) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        ph_buf_reset(&c->out);
        c->out_off = 0;
        if (ph_buf_add(&c->out, ch->data, ch->len) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = c->out.len - c->out_off < max ? c->out.len - c->out_off : max;
    memcpy(buf, c->out.data + c->out_off, n);
    c->out_off += n;
    return (ssize_t)n;
}

static void reader_done(void *cls) { sim_conn_drop(cls); }

enum MHD_Result sim_replay_serve(sim_conn *c, const char *url)
{
    const ph_record *rec = &c->srv->replay;
    if (strcmp(url, rec->path) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "planhost sim is replaying a record of POST %s; nothing recorded for %s",
                 rec->path, url);
        return sim_reply_error(c, MHD_HTTP_NOT_FOUND, msg, NULL);
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READER_BLOCK, reader, c, reader_done);
    if (!r)
        return MHD_NO;
    atomic_fetch_add(&c->refs, 1);
    if (rec->content_type[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rec->content_type);
    MHD_add_response_header(r, "X-Sim-Replay", "1");
    return sim_queue(c, (unsigned)rec->status, r);
}
