using System.Runtime.InteropServices;

namespace Gateway.Load;

/// <summary>gateway-load: see <see cref="LoadOptions.Usage"/>. Exit 0 = report written, 1 = the run failed, 2 = bad arguments.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var error = LoadOptions.Parse(args, out var options);
        if (error == "") { Console.Out.WriteLine(LoadOptions.Usage); return 0; }
        if (error is not null) { Console.Error.WriteLine($"gateway-load: {error}"); return 2; }

        using var interrupt = new CancellationTokenSource();
        // Ctrl+C / SIGTERM end the run early but still stop the child processes and write the report of the steps so far.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; interrupt.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; interrupt.Cancel(); });
        return await RunAsync(options, "gateway-load " + string.Join(' ', args), interrupt.Token);
    }

    /// <summary>The whole run, reusable in-process (the tests call it).</summary>
    public static async Task<int> RunAsync(LoadOptions options, string commandLine, CancellationToken cancellationToken)
    {
        RunReport report;
        try
        {
            report = await LoadRun.RunAsync(options, commandLine, cancellationToken);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or HttpRequestException or OperationCanceledException)
        {
            Console.Error.WriteLine($"\ngateway-load: {e.Message}");
            return 1;
        }
        var files = ReportWriter.WriteAll(report, options.OutDir);
        Console.Out.Write(ReportWriter.Markdown(report));
        Console.Error.WriteLine($"wrote {string.Join(", ", files)}");
        return 0;
    }
}
