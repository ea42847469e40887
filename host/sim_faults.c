/* sim_faults — what each fault mode does to a generation request.
 *
 *   http500     500 with an error body in the API's shape, at once
 *   notfound    404: Ollama's "model 'X' not found, try pulling it first"; an OpenAI-style
 *               error object (code model_not_found) on /v1; llama.cpp's error object
 *   error_mid:K an error event after K tokens (default 3), then the stream ends
 *   reset:K     the connection is closed after K tokens (default 3), without the end of the
 *               chunked body: clients see a transfer error
 *   garbage     a line that is not JSON after tokens 1, 4, 7, ...; the stream then ends well
 *   slow:MS     a token every MS milliseconds (default 2000)
 *   hang        the request is read and never answered (until the client or server leaves)
 *   endless     tokens forever (the answer again and again, at least 5 ms apart)
 *
 * With stream:false: error_mid waits K tokens then answers 500, reset waits K tokens then
 * closes without an answer, garbage answers 200 with a body that is not JSON, endless hangs.
 * The mode comes from the X-Sim-Fault header, else from --fault. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DEFAULT_K 3
#define DEFAULT_SLOW_MS 2000
#define ENDLESS_MIN_S 0.005

static const char *const names[] = {"none", "http500", "notfound", "error_mid", "reset",
                                    "garbage", "slow", "hang", "endless"};

const char *sim_fault_name(sim_fault_kind kind) { return names[kind]; }

int sim_fault_parse(const char *s, sim_fault *out, char *msg, size_t msgsize)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++) {
        if (strlen(names[i]) != n || strncmp(s, names[i], n) != 0)
            continue;
        out->kind = (sim_fault_kind)i;
        out->k = i == SIM_FAULT_SLOW ? DEFAULT_SLOW_MS : DEFAULT_K;
        int takes_k = i == SIM_FAULT_ERROR_MID || i == SIM_FAULT_RESET || i == SIM_FAULT_SLOW;
        if (!colon)
            return 0;
        char *end;
        long k = strtol(colon + 1, &end, 10);
        if (takes_k && colon[1] && !*end && k >= 0 && k <= 1000000) {
            out->k = k;
            return 0;
        }
        snprintf(msg, msgsize, "fault mode '%s': %s", s, takes_k ? "K must be a count >= 0" : "takes no :K");
        return -1;
    }
    snprintf(msg, msgsize, "unknown fault mode '%s' (known: none, http500, notfound, error_mid[:K], "
             "reset[:K], garbage, slow[:MS], hang, endless)", s);
    return -1;
}

int sim_fault_for(sim_conn *c, char *msg, size_t msgsize)
{
    const char *h = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, "X-Sim-Fault");
    c->fault = c->srv->fault;
    return h ? sim_fault_parse(h, &c->fault, msg, msgsize) : 0;
}

static const char *model_name(const sim_conn *c) { return c->req.model[0] ? c->req.model : SIM_MODEL; }

static enum MHD_Result not_found(sim_conn *c)
{
    char msg[400];
    if (c->req.api == SIM_OPENAI) {
        snprintf(msg, sizeof msg, "The model `%s` does not exist or you do not have access to it.", model_name(c));
        return sim_reply_error(c, 404, msg, "model_not_found");
    }
    snprintf(msg, sizeof msg, "model '%s' not found, try pulling it first", model_name(c));
    return sim_reply_error(c, 404, msg, NULL);
}

/* Waits until the client or the server gives up. */
static enum MHD_Result hang(sim_conn *c)
{
    while (sim_conn_sleep(c, 1.0) == 0)
        ;
    return MHD_NO;
}

int sim_fault_early(sim_conn *c, enum MHD_Result *res)
{
    switch (c->fault.kind) {
    case SIM_FAULT_HTTP500:
        *res = sim_reply_error(c, 500, "simulated internal server error (planhost sim fault http500)", NULL);
        return 1;
    case SIM_FAULT_NOTFOUND:
        *res = not_found(c);
        return 1;
    case SIM_FAULT_HANG:
        *res = hang(c);
        return 1;
    case SIM_FAULT_ENDLESS:
        if (c->req.stream)
            return 0;
        *res = hang(c);
        return 1;
    default:
        return 0;
    }
}

sim_action sim_fault_token(sim_conn *c)
{
    switch (c->fault.kind) {
    case SIM_FAULT_RESET:
        return c->ntok >= c->fault.k ? SIM_ABORT : SIM_GO;
    case SIM_FAULT_ERROR_MID:
        if (c->ntok < c->fault.k)
            return SIM_GO;
        sim_proto_stream_error(&c->out, c->req.api, "simulated error in the middle of the stream "
                                                    "(planhost sim fault error_mid)");
        return SIM_END;
    case SIM_FAULT_GARBAGE:
        if (c->ntok % 3 == 1)
            sim_proto_garbage(&c->out, c->req.api, c->ntok);
        return SIM_GO;
    default:
        return SIM_GO;
    }
}

double sim_fault_delay(const sim_conn *c, double delay)
{
    if (c->fault.kind == SIM_FAULT_SLOW)
        return c->fault.k / 1e3;
    if (c->fault.kind == SIM_FAULT_ENDLESS && delay < ENDLESS_MIN_S)
        return ENDLESS_MIN_S;
    return delay;
}

int sim_fault_whole(sim_conn *c, double token_s, enum MHD_Result *res)
{
    sim_fault_kind k = c->fault.kind;
    if (k != SIM_FAULT_ERROR_MID && k != SIM_FAULT_RESET && k != SIM_FAULT_GARBAGE)
        return 0;
    if (k != SIM_FAULT_GARBAGE && sim_conn_sleep(c, token_s * (double)c->fault.k) != 0) {
        *res = MHD_NO;
        return 1;
    }
    if (k == SIM_FAULT_ERROR_MID) {
        *res = sim_reply_error(c, 500, "simulated error while generating (planhost sim fault error_mid)", NULL);
    } else if (k == SIM_FAULT_RESET) {
        *res = MHD_NO;
    } else {
        ph_buf_reset(&c->out);
        sim_proto_garbage(&c->out, c->req.api, 0);
        *res = sim_reply_json(c, 200, c->out.data, c->out.len);
    }
    return 1;
}
