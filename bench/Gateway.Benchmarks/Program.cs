using BenchmarkDotNet.Running;
using Gateway.Benchmarks;

// Two console modes beside BenchmarkDotNet: the upstream client probe (CPU per request, memory per open stream) and the simulator
// child it starts so that the server is not in its numbers.
if (args.Length > 0 && args[0] == "--upstream-probe") return await UpstreamProbe.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "--simulator-child") return await SimulatorChild.ServeAsync();

BenchmarkSwitcher.FromAssembly(typeof(RequestPathBenchmarks).Assembly).Run(args);
return 0;
