namespace Gateway.Cli;

internal static class SimulateCommand
{
    public static Task<int> RunAsync(string[] args) => Task.FromResult(CommandLine.Fail("simulate: not built yet"));
}
