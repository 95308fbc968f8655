using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using StackExchange.Redis;
using Xunit;

namespace Gateway.Testing;

/// <summary>
/// A throw-away <c>redis-server</c> (from PATH, /usr/bin or /usr/local/bin; override with <c>GATEWAY_TEST_REDIS_SERVER</c>) on a free
/// loopback port, no persistence, run as a child process and killed on dispose. <see cref="Connection"/> is a shared multiplexer
/// that reconnects quickly, so tests can <see cref="StopServerAsync"/> and <see cref="StartServerAsync"/> the server (same port)
/// mid-run. Share it per test collection and call <see cref="FlushAsync"/> between tests.
/// A missing binary or a server that does not start makes <see cref="InitializeAsync"/> throw: the tests fail, they are never skipped.
/// </summary>
public sealed class RedisFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly StringBuilder _output = new();
    private string? _binary;
    private string? _dir;
    private Process? _process;
    private ConnectionMultiplexer? _connection;

    /// <summary>Started with <c>--requirepass</c> when set (the multiplexer and the start-up probe log in with it).</summary>
    public string? Password { get; init; }

    /// <summary>Loopback TCP port of the server (stays the same across stop/start).</summary>
    public int Port { get; private set; }

    /// <summary>StackExchange.Redis configuration string: <c>127.0.0.1:PORT</c>.</summary>
    public string ConnectionString => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>A shared multiplexer (admin commands allowed, fast reconnect).</summary>
    public ConnectionMultiplexer Connection => _connection ?? throw new InvalidOperationException("RedisFixture is not initialized");

    /// <summary>True while the server process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        _binary = FindBinary();
        _dir = LocalProcess.CreateTempDirectory("gwredis", traversableByOthers: false);
        try
        {
            Exception? last = null;
            for (var attempt = 0; attempt < 3; attempt++)
            {
                Port = LocalProcess.FreePort();
                try
                {
                    await StartProcessAsync().ConfigureAwait(false);
                    last = null;
                    break;
                }
                catch (InvalidOperationException e) when (e.Message.Contains("in use", StringComparison.OrdinalIgnoreCase))
                {
                    last = e; // the free port was taken between probing and binding: try another
                }
            }
            if (last is not null) throw last;

            var options = new ConfigurationOptions
            {
                EndPoints = { { IPAddress.Loopback, Port } },
                AllowAdmin = true,
                AbortOnConnectFail = false,
                ConnectTimeout = 10_000,
                SyncTimeout = 10_000,
                AsyncTimeout = 10_000,
                ConnectRetry = 5,
                ReconnectRetryPolicy = new LinearRetry(250),
                ClientName = "gateway-tests",
                Password = Password,
            };
            _connection = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
            await WaitForMultiplexerAsync(StartTimeout).ConfigureAwait(false);
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Deletes every key in every database.</summary>
    public async Task FlushAsync()
    {
        var server = Connection.GetServer(IPAddress.Loopback, Port);
        await server.FlushAllDatabasesAsync().ConfigureAwait(false);
    }

    /// <summary>Kills the server (SIGKILL, like a crash). The multiplexer stays and starts reconnecting.</summary>
    public async Task StopServerAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            await KillProcessAsync().ConfigureAwait(false);
        }
        finally { _lock.Release(); }
    }

    /// <summary>
    /// Hangs the server as a stuck host would (SIGSTOP): connections stay open and commands are taken by the kernel, but nothing
    /// answers. <see cref="ResumeServerAsync"/> continues it; call it in a finally.
    /// </summary>
    public Task HangServerAsync() => SignalAsync("-STOP");

    /// <summary>Continues a server stopped by <see cref="HangServerAsync"/>.</summary>
    public Task ResumeServerAsync() => SignalAsync("-CONT");

    private async Task SignalAsync(string signal)
    {
        var pid = _process?.Id ?? throw new InvalidOperationException("RedisFixture: the server is not running");
        var kill = await LocalProcess.RunAsync("kill", [signal, pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        if (kill.ExitCode != 0) throw new InvalidOperationException($"RedisFixture: kill {signal} failed:\n{kill.Output}");
    }

    /// <summary>Starts the server again on the same port and waits until it answers (directly and through <see cref="Connection"/>).</summary>
    public async Task StartServerAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (IsRunning) return;
            // The port was ours a moment ago; redis-server sets SO_REUSEADDR, but give a lingering socket a few tries.
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await StartProcessAsync().ConfigureAwait(false);
                    break;
                }
                catch (InvalidOperationException e) when (attempt < 20 && e.Message.Contains("in use", StringComparison.OrdinalIgnoreCase))
                {
                    await Task.Delay(250).ConfigureAwait(false);
                }
            }
        }
        finally { _lock.Release(); }
        if (_connection is not null) await WaitForMultiplexerAsync(StartTimeout).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
        await KillProcessAsync().ConfigureAwait(false);
        LocalProcess.TryDeleteDirectory(_dir);
        _dir = null;
    }

    private async Task StartProcessAsync()
    {
        lock (_output) _output.Clear();
        var psi = new ProcessStartInfo(_binary!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir!,
        };
        foreach (var a in new[]
                 {
                     "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--daemonize", "no", "--dir", _dir!, "--protected-mode", "no",
                 })
            psi.ArgumentList.Add(a);
        if (Password is not null)
        {
            psi.ArgumentList.Add("--requirepass");
            psi.ArgumentList.Add(Password);
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new InvalidOperationException($"RedisFixture: could not start '{_binary}': {e.Message}", e);
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync().ConfigureAwait(false);
                var exitCode = process.ExitCode;
                _process = null;
                process.Dispose();
                throw new InvalidOperationException(
                    $"RedisFixture: redis-server on port {Port} exited with code {exitCode} before answering PING:\n{Output()}");
            }
            var pid = await ProbePidAsync(Port, Password).ConfigureAwait(false);
            if (pid == process.Id) return;
            if (pid > 0)
            {
                // Someone else's server answers on this port: ours will fail to bind.
                await KillProcessAsync().ConfigureAwait(false);
                throw new InvalidOperationException($"RedisFixture: port {Port} is already in use by another Redis server (pid {pid}).");
            }
            if (deadline.Elapsed > StartTimeout)
            {
                await KillProcessAsync().ConfigureAwait(false);
                throw new TimeoutException(
                    $"RedisFixture: redis-server on port {Port} did not answer PING within {StartTimeout.TotalSeconds:0} s:\n{Output()}");
            }
            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            if (_output.Length < 64 * 1024) _output.AppendLine(line);
        }
    }

    private string Output()
    {
        lock (_output) return _output.ToString();
    }

    private async Task KillProcessAsync()
    {
        var process = _process;
        _process = null;
        if (process is null) return;
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException) { }
        catch (OperationCanceledException) { }
        finally { process.Dispose(); }
    }

    /// <summary>
    /// One raw <c>INFO server</c> on a fresh socket; the server's <c>process_id</c>, or -1 when nothing (or nothing sane) answers.
    /// Comparing the pid makes sure we talk to our own child and not to another server that took the port.
    /// </summary>
    private static async Task<int> ProbePidAsync(int port, string? password)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, port, cts.Token).ConfigureAwait(false);
            var command = (password is null ? "" : $"AUTH {password}\r\n") + "INFO server\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(command), SocketFlags.None, cts.Token).ConfigureAwait(false);
            var buffer = new byte[16 * 1024];
            var length = 0;
            while (length < buffer.Length)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cts.Token).ConfigureAwait(false);
                if (n == 0) break;
                length += n;
                var text = Encoding.ASCII.GetString(buffer, 0, length);
                if (password is not null && text.StartsWith("+OK\r\n", StringComparison.Ordinal)) text = text[5..];
                if (text.StartsWith('-')) return -1; // e.g. -LOADING
                var at = text.IndexOf("\r\nprocess_id:", StringComparison.Ordinal);
                if (at < 0) continue;
                var start = at + "\r\nprocess_id:".Length;
                var end = text.IndexOf('\r', start);
                if (end < 0) continue;
                return int.TryParse(text.AsSpan(start, end - start), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : -1;
            }
            return -1;
        }
        catch (SocketException) { return -1; }
        catch (OperationCanceledException) { return -1; }
    }

    private async Task WaitForMultiplexerAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        Exception? last = null;
        while (deadline.Elapsed < timeout)
        {
            try
            {
                await _connection!.GetDatabase().PingAsync().ConfigureAwait(false);
                return;
            }
            catch (RedisException e) { last = e; }
            catch (TimeoutException e) { last = e; }
            await Task.Delay(100).ConfigureAwait(false);
        }
        throw new TimeoutException($"RedisFixture: the multiplexer did not reach 127.0.0.1:{Port} within {timeout.TotalSeconds:0} s", last);
    }

    private static string FindBinary()
    {
        var overridden = Environment.GetEnvironmentVariable("GATEWAY_TEST_REDIS_SERVER");
        if (!string.IsNullOrEmpty(overridden))
        {
            return File.Exists(overridden)
                ? overridden
                : throw new InvalidOperationException($"RedisFixture: GATEWAY_TEST_REDIS_SERVER={overridden} does not exist.");
        }
        return LocalProcess.FindExecutable("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")
            ?? throw new InvalidOperationException(
                "RedisFixture: 'redis-server' was not found (PATH, /usr/bin, /usr/local/bin). Install it with " +
                "'apt-get install -y redis-server' (./build.sh test does this), or set GATEWAY_TEST_REDIS_SERVER.");
    }
}
