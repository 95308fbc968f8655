using System.Diagnostics;
using System.Text.Json;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Storage;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Admin;

/// <summary>How the admin API is wired into hosts: off without a store, and what <c>gateway serve</c> says about it at start-up.</summary>
public sealed class AdminHostTests
{
    [Fact]
    public async Task A_host_without_a_store_answers_404_with_the_reason()
    {
        var options = GatewayFixture.BuildOptions("http://127.0.0.1:9") with { AdminKey = "some-admin-key" };
        await using var gateway = new GatewayHost(options, Stream.Null);
        await gateway.StartAsync();
        Assert.False(gateway.Admin.Enabled);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}") };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/models");
        request.Headers.Add("X-Admin-Key", "some-admin-key");
        using var response = await client.SendAsync(request);
        Assert.Equal(404, (int)response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("admin_api_disabled", body.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("without a store", body.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("serve-test-admin-key-93c1", "admin API enabled")]
    [InlineData("", "admin API disabled (auth.admin_key is empty)")]
    public async Task Serve_says_at_start_whether_the_admin_api_is_on_and_never_prints_the_key(string adminKey, string expected)
    {
        var dir = LocalProcess.CreateTempDirectory("gw-admin-serve", traversableByOthers: false);
        Process? process = null;
        try
        {
            var config = Path.Combine(dir, "gateway.toml");
            await File.WriteAllTextAsync(config,
                $"[server]\nhost = \"127.0.0.1\"\nport = 0\n[auth]\nadmin_key = \"{adminKey}\"\n[storage]\ndata_dir = \"{Path.Combine(dir, "data")}\"\n[health_check]\ninterval = \"0s\"\n");
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { CliTests.GatewayDll(), "serve", config }) psi.ArgumentList.Add(a);
            foreach (var name in new[] { "ADMIN_API_KEY", "DATABASE_URL", "REDIS_URL", "PORT", "LOG_FORMAT", "LOG_LEVEL" }) psi.Environment.Remove(name);
            process = Process.Start(psi)!;

            string? listening = null;
            var output = new List<string>();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (listening is null && await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                output.Add(line);
                if (line.Contains("gateway listening", StringComparison.Ordinal)) listening = line;
            }
            if (listening is null)
            {
                process.Kill();
                Assert.Fail("no listening line:\n" + string.Join('\n', output) + "\n" + await process.StandardError.ReadToEndAsync());
            }
            var msg = JsonDocument.Parse(listening).RootElement.GetProperty("msg").GetString()!;
            Assert.Contains(expected, msg, StringComparison.Ordinal);
            if (adminKey.Length > 0) Assert.DoesNotContain(adminKey, string.Join('\n', output), StringComparison.Ordinal);

            // The running binary answers the admin API as it said it would.
            var port = int.Parse(msg.Split("127.0.0.1:")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/models");
            request.Headers.Add("X-Admin-Key", adminKey.Length > 0 ? adminKey : "anything");
            using var response = await client.SendAsync(request);
            Assert.Equal(adminKey.Length > 0 ? 200 : 404, (int)response.StatusCode);
        }
        finally
        {
            if (process is not null)
            {
                try { process.Kill(); } catch (InvalidOperationException) { } // already gone
                await process.WaitForExitAsync();
                process.Dispose();
            }
            LocalProcess.TryDeleteDirectory(dir);
        }
    }

    /// <summary>Starts <c>gateway serve FILE</c> and waits for its listening line; returns the process and its port.</summary>
    private static async Task<(Process Process, int Port)> ServeAsync(string config)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { CliTests.GatewayDll(), "serve", config }) psi.ArgumentList.Add(a);
        foreach (var name in new[] { "ADMIN_API_KEY", "DATABASE_URL", "REDIS_URL", "PORT", "LOG_FORMAT", "LOG_LEVEL" }) psi.Environment.Remove(name);
        var process = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (!line.Contains("gateway listening", StringComparison.Ordinal)) continue;
            var msg = JsonDocument.Parse(line).RootElement.GetProperty("msg").GetString()!;
            _ = process.StandardOutput.ReadToEndAsync(); // keep the pipe drained
            return (process, int.Parse(msg.Split("127.0.0.1:")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture));
        }
        var err = await process.StandardError.ReadToEndAsync();
        process.Kill();
        throw new InvalidOperationException("gateway serve did not start: " + err);
    }

    [Fact]
    public async Task Embedded_state_written_through_the_admin_api_survives_kill_9_and_a_truncated_file_is_refused_and_kept()
    {
        var dir = LocalProcess.CreateTempDirectory("gw-admin-kill", traversableByOthers: false);
        await using var sim = await Gateway.Simulation.VllmSimulator.StartAsync(new Gateway.Simulation.SimulatorOptions { Port = 0, Models = ["m/id"] });
        const string admin = "kill-test-admin-key";
        var config = Path.Combine(dir, "gateway.toml");
        await File.WriteAllTextAsync(config,
            $"[server]\nhost = \"127.0.0.1\"\nport = 0\n[auth]\nadmin_key = \"{admin}\"\n[storage]\ndata_dir = \"{Path.Combine(dir, "data")}\"\n[health_check]\ninterval = \"0s\"\n");
        static async Task<JsonElement> Call(HttpClient client, HttpMethod method, string path, string? body, int expected)
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Add("X-Admin-Key", admin);
            if (body is not null) request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(expected == (int)response.StatusCode, $"{method} {path}: {(int)response.StatusCode} {text}");
            return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        }
        try
        {
            var (first, port) = await ServeAsync(config);
            string key;
            using (var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
            {
                var model = await Call(client, HttpMethod.Post, "/admin/v1/models", """{"name":"durable","model_id":"m/id"}""", 201);
                var id = model.GetProperty("id").GetString();
                await Call(client, HttpMethod.Post, $"/admin/v1/models/{id}/backends", $$"""{"url":"{{sim.BaseUrl}}"}""", 201);
                key = (await Call(client, HttpMethod.Post, "/admin/v1/keys", """{"name":"survivor"}""", 201)).GetProperty("key").GetString()!;
            }
            first.Kill(); // SIGKILL: no shutdown code runs
            await first.WaitForExitAsync();

            var (second, port2) = await ServeAsync(config);
            try
            {
                using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port2}") };
                var models = await Call(client, HttpMethod.Get, "/admin/v1/models", null, 200);
                var durable = Assert.Single(models.EnumerateArray(), m => m.GetProperty("name").GetString() == "durable");
                Assert.Single(durable.GetProperty("backends").EnumerateArray());
                using var chat = GatewayFixture.CreatePost($"http://127.0.0.1:{port2}/v1/chat/completions", """{"model":"durable","messages":[]}""", key);
                using var answer = await client.SendAsync(chat);
                Assert.Equal(200, (int)answer.StatusCode);
            }
            finally
            {
                second.Kill();
                await second.WaitForExitAsync();
            }

            // A torn file (as a non-atomic writer would leave it): refused with a line naming it, and left exactly as it was.
            var state = Path.Combine(dir, "data", "state.json");
            var bytes = await File.ReadAllBytesAsync(state);
            await File.WriteAllBytesAsync(state, bytes[..(bytes.Length / 2)]);
            var refused = await LocalProcess.RunAsync("dotnet", [CliTests.GatewayDll(), "serve", config], TimeSpan.FromSeconds(60));
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("corrupt or truncated", refused.StdErr, StringComparison.Ordinal);
            Assert.Contains(state, refused.StdErr, StringComparison.Ordinal);
            Assert.Equal(bytes[..(bytes.Length / 2)], await File.ReadAllBytesAsync(state));
        }
        finally
        {
            LocalProcess.TryDeleteDirectory(dir);
        }
    }
}
