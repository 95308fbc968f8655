wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ml-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
wrk.body = '{"model":"qwen","messages":[{"role":"user","content":"Hello! How are you today?"}],"max_tokens":16,"stream":false}'
