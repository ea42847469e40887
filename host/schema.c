/* schema — plan JSON schema from the registry. See schema.h. */
#include "schema.h"

#include "jsonw.h"

static void param_schema(ph_buf *b, const ph_param *p)
{
    static const char *const pos = "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"},"
                                   "\"y\":{\"type\":\"integer\"}},\"required\":[\"x\",\"y\"]}";
    switch (p->type) {
    case PH_T_INT:
    case PH_T_ENTITY:
        ph_buf_adds(b, "{\"type\":\"integer\"}");
        break;
    case PH_T_UINT:
        ph_buf_adds(b, "{\"type\":\"integer\",\"minimum\":0}");
        break;
    case PH_T_FLOAT:
        ph_buf_adds(b, "{\"type\":\"number\"}");
        break;
    case PH_T_STRING:
        ph_buf_adds(b, "{\"type\":\"string\"}");
        break;
    case PH_T_POSITION:
        ph_buf_adds(b, pos);
        break;
    case PH_T_POSITIONS:
        ph_buf_addf(b, "{\"type\":\"array\",\"items\":%s,\"minItems\":%d}", pos, p->min_items > 0 ? p->min_items : 1);
        break;
    case PH_T_ENUM:
        ph_buf_adds(b, "{\"type\":\"string\",\"enum\":[");
        for (int v = 0; v < p->nvalues; v++) {
            ph_buf_adds(b, v ? "," : "");
            ph_jsonw_cstr(b, p->values[v]);
        }
        ph_buf_adds(b, "]}");
        break;
    default:
        ph_buf_adds(b, "{}");
    }
}

/* One step alternative: {"type":"object","properties":{"act":{"enum":["MoveTo"]},...},...} */
static void step_schema(ph_buf *b, const ph_tool *t)
{
    ph_buf_adds(b, "{\"type\":\"object\",\"properties\":{\"act\":{\"type\":\"string\",\"enum\":[");
    ph_jsonw_cstr(b, t->name);
    ph_buf_adds(b, "]}");
    for (int i = 0; i < t->nparams; i++) {
        ph_buf_adds(b, ",");
        ph_jsonw_key(b, t->params[i].name, 1);
        param_schema(b, &t->params[i]);
    }
    ph_buf_adds(b, "},\"required\":[\"act\"");
    for (int i = 0; i < t->nparams; i++)
        if (!t->params[i].optional)
            ph_buf_adds(b, ","), ph_jsonw_cstr(b, t->params[i].name);
    ph_buf_adds(b, "],\"additionalProperties\":false}");
}

static void plan_schema(ph_buf *b, const ph_registry *r, const int *tools, int n, int batch)
{
    ph_buf_adds(b, "{\"type\":\"object\",\"properties\":{");
    if (batch)
        ph_buf_adds(b, "\"agent_id\":{\"type\":\"string\"},");
    ph_buf_adds(b, "\"plan_id\":{\"type\":\"string\"},\"steps\":{\"type\":\"array\",\"items\":{\"anyOf\":[");
    for (int i = 0; i < n; i++) {
        ph_buf_adds(b, i ? "," : "");
        step_schema(b, &r->tools[tools ? tools[i] : i]);
    }
    ph_buf_addf(b, "]},\"minItems\":1,\"maxItems\":%d}},\"required\":[%s\"plan_id\",\"steps\"]}",
                PH_SCHEMA_MAX_STEPS, batch ? "\"agent_id\"," : "");
}

int ph_schema_build(const ph_registry *r, const int *tools, int n, int batch, ph_buf *out)
{
    if (!tools)
        n = r->ntools;
    if (batch) {
        ph_buf_adds(out, "{\"type\":\"array\",\"items\":");
        plan_schema(out, r, tools, n, 1);
        ph_buf_adds(out, "}");
    } else {
        plan_schema(out, r, tools, n, 0);
    }
    return out->failed ? -1 : 0;
}
