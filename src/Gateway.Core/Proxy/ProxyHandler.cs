using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.Json;
using Gateway.Limits;
using Gateway.Net;
using Gateway.Observability;
using Gateway.Proxy.Upstream;
using Gateway.Routing;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Gateway.Proxy;

/// <summary>
/// The request path for POST /v1/chat/completions, /v1/completions and /v1/embeddings:
/// <code>
/// client ─► (2) request id ─► (3) auth ─► (4) body + scan ─► (5) resolve ─► (7) splice ─► (8) balance ─► (9) forward ─► (10) relay ─► client
///                                                                                                 ▲ retry on another backend before any byte
/// </code>
/// Each step is marked below; step 11 (account: metrics, log line, token charges) runs in a finally, whatever happened.
/// </summary>
/// <param name="keyResolver">Scaled-out mode's bounded lookup of keys missing from the snapshot; null in embedded mode.</param>
/// <param name="drainExpired">Fires when the gateway stops waiting for open streams at shutdown: they end with an error event.</param>
public sealed partial class ProxyHandler(
    SnapshotHolder snapshots, UpstreamClient upstream, IRateLimiter limiter, GatewayOptions options, GatewayMetrics metrics, GatewayLog log,
    UnknownKeyResolver? keyResolver = null, CancellationToken drainExpired = default)
{
    private readonly long _maxBody = options.Server.MaxBodyBytes;

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    public async ValueTask HandleAsync(Exchange exchange, ProxyEndpoint endpoint)
    {
        var request = ProxyRequest.Rent();
        var record = request.Record;
        // The client connection's event loop (null on Kestrel's socket transport), taken before any await: a limiter in Redis or a
        // key looked up in PostgreSQL resumes elsewhere, and the upstream exchange should still come back to the client's thread.
        // Off the loops (a connection's first request, which Kestrel starts on the thread pool, or inline_io off) the connection
        // names its loop.
        var home = EventLoop.Current ?? exchange.ConnectionLoop;
        record.Reset(Stopwatch.GetTimestamp());
        try
        {
            // Steps 2–7 answer their own refusals; what they found is in request and record. Steps 8–10: balance, forward
            // (retrying before the first byte), relay. (Two methods so that this one's state, boxed for every request that waits
            // for its upstream, stays small: the first steps' locals would make it ~740 bytes.)
            if (await PrepareAsync(exchange, endpoint, request))
                await ForwardAsync(exchange, request, endpoint, home);
        }
        catch (Exception) when (!exchange.Response.HasStarted)
        {
            // A bug of ours: an OpenAI-shaped 500 rather than Kestrel's empty one. (Only renting the request above and step 11 below
            // are outside this try; an exception there reaches Kestrel, which answers an empty 500.)
            record.Status = 500;
            await GatewayApplication.WriteInternalErrorAsync(exchange);
        }
        catch
        {
            record.Status = exchange.Response.StatusCode; // mid-response: Kestrel aborts the connection
            throw;
        }
        finally
        {
            // Step 11: account. Nothing sent = the client left before an answer (nginx's 499).
            request.ReleaseCount();
            if (record.Status == 0) record.Status = exchange.Response.HasStarted ? exchange.Response.StatusCode : 499;
            long end = Stopwatch.GetTimestamp();
            try { metrics.Record(record, end); }
            finally
            {
                // A metrics failure must not cost the request's log line or its pooled buffers.
                log.Request(record, end);
                ProxyRequest.Return(request);
            }
        }
    }

    /// <summary>
    /// Steps 2–7: request id, auth, body, scan and alias, rate limits, splice. False when the request was answered here (a refusal).
    /// Completes at once unless a key lookup, the body or a Redis limiter makes it wait, and allocates nothing then.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private async ValueTask<bool> PrepareAsync(Exchange exchange, ProxyEndpoint endpoint, ProxyRequest request)
    {
        var record = request.Record;
        // Step 2: request id, echoed to the client and sent upstream.
        var requestId = RequestId.From(exchange.RequestHeaders[GatewayHeaders.RequestId]);
        exchange.ResponseHeaders[GatewayHeaders.RequestId] = requestId;
        record.RequestId = requestId;
        record.Method = exchange.Method;
        record.Path = exchange.Path;
        record.OverheadRoute = endpoint switch
        {
            ProxyEndpoint.ChatCompletions => metrics.OverheadChat,
            ProxyEndpoint.Completions => metrics.OverheadCompletions,
            _ => metrics.OverheadEmbeddings,
        };

        // Step 3: auth, before reading a byte of the body.
        var (authError, key, snapshot) = await Authenticator.AuthenticateAsync(exchange.RequestHeaders.Authorization, snapshots, keyResolver);
        if (authError is { } ae) { await ReplyErrorAsync(exchange, record, ae); return false; }
        record.KeyPrefix = key!.KeyPrefix;

        // Step 4: read the body into pooled memory (bounded) and scan it once.
        OpenAiError? bodyError;
        try { bodyError = RequestBody.CheckJsonContentType(exchange) ?? await RequestBody.ReadAsync(exchange, request.Body, _maxBody); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            bodyError = OpenAiError.InvalidRequest("The request body could not be read: " + e.Message) with { Status = e.StatusCode is >= 400 and < 500 ? e.StatusCode : 400 };
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            return false; // the client went away while sending
        }
        if (bodyError is { } be) { await ReplyErrorAsync(exchange, record, be, key!); return false; }

        // Steps 4–5, synchronous: scan, resolve the alias, check the key's models.
        var resolveError = Resolve(request, snapshot, key!, out var model);
        if (model is not null) { record.Model = model; record.Streaming = request.Scan.Stream; } // a known alias, also on 403/404
        if (resolveError is { } re) { await ReplyErrorAsync(exchange, record, re, key!); return false; }

        // Step 6: rate limits, one call: RPM check-and-add plus TPM pre-check, for the key and the key × model scope.
        var rate = new RateRequest(key!.Id, key.Limits, model!.Alias, model.Limits) { Slot = key.LimiterSlot };
        if (!key.Limits.IsUnlimited || !model.Limits.IsUnlimited)
        {
            var decision = await limiter.CheckAsync(rate, exchange.RequestAborted);
            RateLimitHeaders.Apply(exchange.ResponseHeaders, decision);
            if (!decision.Allowed)
            {
                bool requests = decision.Violation is LimitViolation.KeyRequests or LimitViolation.ModelRequests;
                metrics.RateLimitHit(key, requests ? RateLimitKind.Rpm : RateLimitKind.Tpm);
                long limit = decision.Violation switch
                {
                    LimitViolation.KeyRequests => key.Limits.RequestsPerWindow, LimitViolation.KeyTokens => key.Limits.TokensPerWindow,
                    LimitViolation.ModelRequests => model.Limits.RequestsPerWindow, _ => model.Limits.TokensPerWindow,
                };
                await ReplyErrorAsync(exchange, record, RateLimitHeaders.Refusal(decision, limit));
                return false;
            }
            request.Rate = rate;
        }
        // (else nothing to charge: request.Rate stays default)

        // Step 7: splice the upstream body.
        BodySplicer.Splice(request.Body.WrittenSpan, request.Scan, model, endpoint, request.Upstream);
        return true;
    }

    /// <summary>The gateway's own time so far, as <c>X-Gateway-Overhead-Ms</c>.</summary>
    private static void SetOverheadHeader(Exchange exchange, RequestRecord record, long overheadTicks) =>
        exchange.ResponseHeaders[GatewayHeaders.OverheadMs] = GatewayHeaders.FormatMilliseconds(RequestRecord.Milliseconds(overheadTicks));

    private static ValueTask ReplyErrorAsync(Exchange exchange, RequestRecord record, in OpenAiError error)
    {
        SetOverheadHeader(exchange, record, record.Overhead(Stopwatch.GetTimestamp()));
        return exchange.WriteErrorAsync(error);
    }

    /// <summary>An error before the limit check: not a counted request, but the key's X-RateLimit-* headers still go with it.</summary>
    private async ValueTask ReplyErrorAsync(Exchange exchange, RequestRecord record, OpenAiError error, KeyEntry key)
    {
        await ApplyRateLimitHeadersAsync(exchange, key);
        await ReplyErrorAsync(exchange, record, error);
    }

    /// <summary>
    /// The key's X-RateLimit-* headers for a response that is not a counted request (a peek: nothing recorded, no Retry-After).
    /// Unlimited keys, and a limiter failing open, send none.
    /// </summary>
    public async ValueTask ApplyRateLimitHeadersAsync(Exchange exchange, KeyEntry key)
    {
        if (key.Limits.IsUnlimited) return;
        var decision = await limiter.PeekAsync(new RateRequest(key.Id, key.Limits, null, default) { Slot = key.LimiterSlot }, exchange.RequestAborted);
        RateLimitHeaders.Apply(exchange.ResponseHeaders, decision);
    }

    private static OpenAiError? Resolve(ProxyRequest request, Snapshot snapshot, KeyEntry key, out ModelEntry? model)
    {
        model = null;
        var body = request.Body.WrittenSpan;
        var scan = request.Scan;
        if (RequestScanner.Scan(body, scan) is { } scanError) return scanError;

        // Step 5: resolve the alias without allocating a string for it.
        Span<byte> nameUtf8 = stackalloc byte[256];
        Span<char> name = stackalloc char[256];
        int nameBytes = RequestScanner.CopyModelName(body, scan, nameUtf8);
        if (nameBytes == RequestScanner.NotText) return OpenAiError.InvalidRequest("The 'model' field is not valid text: it escapes a lone surrogate.", "model");
        int nameChars = nameBytes < 0 ? -1 : Encoding.UTF8.GetChars(nameUtf8[..nameBytes], name);
        model = nameChars < 0 ? null : snapshot.FindModel(name[..nameChars]);
        if (model is null || !model.Active)
            return OpenAiError.ModelNotFound(nameChars < 0 ? "(too long)" : new string(name[..nameChars]));
        return key.Allows(model.Alias) ? null : OpenAiError.ModelNotAllowed(model.Alias);
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private async ValueTask ForwardAsync(Exchange exchange, ProxyRequest request, ProxyEndpoint endpoint, EventLoop? home)
    {
        var record = request.Record;
        ModelEntry model = record.Model!; // what PrepareAsync resolved and recorded
        string requestId = record.RequestId!;
        var modelMetrics = metrics.For(model);
        var clientAborted = exchange.RequestAborted;
        Backend? failed = null;
        var forwarded = ForwardedHeaders(exchange, request, upstream.Options.PassThroughHeaders); // the same for every attempt
        for (int attempt = 1; ; attempt++)
        {
            // Step 8: balance (wrr or p2c, per model). A backend that just failed is skipped for the retry.
            var backend = model.Balancer.Pick(exclude: failed);
            if (backend is null)
            {
                await ReplyErrorAsync(exchange, record, failed is null ? OpenAiError.NoHealthyBackend(model.Alias) : OpenAiError.BackendError("The model server could not be reached."));
                return;
            }
            request.CountOn(backend.Load); // in flight until step 11, whatever the outcome; p2c reads it

            // Step 9: forward, through Http1Client when proxy.upstream_client = "http1" (the default) and the backend is http://
            // (its route was resolved with the snapshot), else through SocketsHttpHandler. Only safe headers go upstream; never the
            // client's Authorization.
            var route = upstream.RouteFor(backend, endpoint);
            using var message = route is null ? CreateMessage(request, backend, endpoint, requestId, forwarded) : null;

            // One pooled token source per request carries the client's abort and every upstream time limit.
            var cts = request.Cancellation(clientAborted);
            request.ArmFirstByte(upstream.Options.FirstByteTimeout);
            record.Backend = backend;
            var backendMetrics = metrics.For(model, backend);
            UpstreamResponse response;
            long sent = Stopwatch.GetTimestamp();
            try
            {
                response = message is not null
                    ? new UpstreamResponse(await upstream.Invoker.SendAsync(message, cts.Token))
                    : new UpstreamResponse(await upstream.Http1!.SendAsync(route!, request.Upstream.WrittenMemory, requestId, forwarded, home, cts.Token));
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                record.UpstreamTicks += Stopwatch.GetTimestamp() - sent;
                return; // the client left; nothing to answer
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                // No headers within first_byte_timeout. Not retried: a backend this slow is queueing or stuck, and a second wait as
                // long would double what the client already waited.
                record.UpstreamTicks += Stopwatch.GetTimestamp() - sent;
                backendMetrics.Timeout.Inc();
                MarkFailed(model, backend);
                await ReplyErrorAsync(exchange, record, OpenAiError.BackendTimeout("The model server did not answer within the gateway's first-byte timeout."));
                return;
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or UpstreamException)
            {
                // Refused, reset or closed before any response byte, a response head that is not HTTP, or not connected within
                // connect_timeout (the handler's own cancellation, not ours; http1's ConnectTimeout): the client has seen nothing
                // yet, so another backend may take it. (Http1Client already resent once when a pooled connection turned out dead.)
                // This includes a backend that died after the request went out: a completion has no side effect beyond compute, so
                // answering it elsewhere beats a 502; max_attempts bounds what one poison request can cost.
                record.UpstreamTicks += Stopwatch.GetTimestamp() - sent;
                bool connectTimeout = e is OperationCanceledException or UpstreamException { Failure: UpstreamFailure.ConnectTimeout };
                (connectTimeout ? backendMetrics.Timeout : backendMetrics.Connect).Inc();
                MarkFailed(model, backend);
                if (attempt < upstream.Options.MaxAttempts && model.Backends.Length > 1)
                {
                    modelMetrics.Failovers.Inc();
                    failed = backend;
                    continue;
                }
                await ReplyErrorAsync(exchange, record, connectTimeout
                    ? OpenAiError.BackendTimeout("The model server did not accept a connection in time.")
                    : OpenAiError.BackendError("The model server could not be reached."));
                return;
            }
            long toHeaders = Stopwatch.GetTimestamp() - sent;
            record.UpstreamTicks += toHeaders;
            backendMetrics.Duration.Observe(RequestRecord.Seconds(toHeaders));

            // Disposed on every way out, retry included: an http1 connection goes back to its pool only when its body was read to
            // the end, and is closed otherwise.
            using (response)
            {
                int status = response.StatusCode;
                if (status >= 500)
                {
                    backendMetrics.Status5xx.Inc();
                    MarkFailed(model, backend);
                }
                if (status == (int)HttpStatusCode.ServiceUnavailable && attempt < upstream.Options.MaxAttempts && model.Backends.Length > 1)
                {
                    modelMetrics.Failovers.Inc();
                    failed = backend; // overloaded or starting; no byte reached the client yet
                    continue;
                }
                // Step 10: relay. From here the idle timeout applies to each read (a stream's first event still gets the rest of
                // the first-byte time).
                request.DisarmFirstByte();
                var target = new Target(model, backend, backendMetrics);
                if (request.Scan.Stream && status == (int)HttpStatusCode.OK && response.IsEventStream)
                {
                    modelMetrics.ActiveStreams.Inc();
                    var firstByteLeft = upstream.Options.FirstByteTimeout - Stopwatch.GetElapsedTime(sent);
                    try { await RelayStreamAsync(exchange, request, target, response, cts, firstByteLeft); }
                    finally { modelMetrics.ActiveStreams.Dec(); }
                }
                else
                    await RelayJsonAsync(exchange, request, target, response, cts);
            }
            return;
        }
    }

    /// <summary>
    /// The request for SocketsHttpHandler: the spliced body (re-sendable on a dead pooled connection), X-Request-ID and the
    /// forwarded headers.
    /// </summary>
    private static HttpRequestMessage CreateMessage(ProxyRequest request, Backend backend, ProxyEndpoint endpoint, string requestId,
        List<KeyValuePair<string, string>>? forwarded)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, endpoint switch
        {
            ProxyEndpoint.ChatCompletions => backend.ChatCompletions,
            ProxyEndpoint.Completions => backend.Completions,
            _ => backend.Embeddings,
        })
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new BufferContent(request.Upstream.WrittenMemory),
        };
        message.Headers.TryAddWithoutValidation(GatewayHeaders.RequestId, requestId);
        if (forwarded is not null)
            foreach (var (name, value) in forwarded) message.Headers.TryAddWithoutValidation(name, value);
        return message;
    }

    /// <summary>
    /// The client headers that go upstream beyond the ones either client sets itself (Host, Content-Type, Content-Length,
    /// X-Request-ID): Accept and the configured pass-through headers, in the request's reused list; null when there is none.
    /// </summary>
    private static List<KeyValuePair<string, string>>? ForwardedHeaders(Exchange exchange, ProxyRequest request, string[] passThrough)
    {
        var headers = request.UpstreamHeaders;
        headers.Clear();
        if (Forwardable(exchange.RequestHeaders.Accept) is { } accept) headers.Add(new(HeaderNames.Accept, accept));
        foreach (var name in passThrough)
            if (Forwardable(exchange.RequestHeaders[name]) is { } value) headers.Add(new(name, value));
        return headers.Count == 0 ? null : headers;
    }

    /// <summary>
    /// A client header's value as both upstream clients forward it: several values joined with ","; a value the wire cannot carry
    /// as it is (control or non-ASCII characters) is left out rather than failing the request.
    /// </summary>
    private static string? Forwardable(StringValues values) =>
        values.Count > 0 && (string?)values is { } value && value.AsSpan().IndexOfAnyExcept(FieldValueChars) < 0 ? value : null;

    /// <summary>Visible ASCII, space and tab: what a field value may hold on the wire without any decoding question.</summary>
    private static readonly SearchValues<char> FieldValueChars = SearchValues.Create("\t !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    /// <summary>
    /// Passive health: a failure the backend caused (never one the client caused) counts against it; enough in a row eject it until
    /// active checks bring it back. Without active checks nothing could, so then there is no passive ejection either.
    /// </summary>
    private void MarkFailed(ModelEntry model, Backend backend)
    {
        if (options.HealthCheck.Interval > TimeSpan.Zero &&
            backend.Health.Record(false, options.HealthCheck.HealthyThreshold, upstream.Options.PassiveFailureThreshold, isActiveCheck: false))
            metrics.For(model, backend).Health.Set(0);
    }

    /// <summary>Where a response comes from: for error accounting and passive health.</summary>
    private readonly record struct Target(ModelEntry Model, Backend Backend, BackendMetrics Metrics);

    /// <summary>The upstream went quiet past a timeout: counted, and a passive failure of the backend.</summary>
    private void TimedOut(in Target target)
    {
        target.Metrics.Timeout.Inc();
        MarkFailed(target.Model, target.Backend);
    }
}
