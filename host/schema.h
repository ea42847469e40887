/* schema — the JSON schema of a plan, built from a template's tool subset.
 *
 * Sent when a template sets schema = true, as Ollama's `format`, OpenAI's
 * `response_format.json_schema.schema` and llama.cpp's `json_schema`, so a server with
 * structured output can only produce plans the validator accepts: each step is one of the
 * subset's tools with exactly its parameters and types. No Lua. Depends on registry, buf. */
#ifndef PH_SCHEMA_H
#define PH_SCHEMA_H

#include "buf.h"
#include "registry.h"

#define PH_SCHEMA_MAX_STEPS 8

/* Appends the schema for a plan over tools[0..n) (registry indexes), or for the batch answer
 * array when `batch`. Returns 0, or -1 at the buffer's cap. Deterministic. */
int ph_schema_build(const ph_registry *r, const int *tools, int n, int batch, ph_buf *out);

#endif
