using Gateway.Benchmarks;

// The same two modes as in Gateway.Benchmarks, without BenchmarkDotNet (which is not AOT-compatible).
if (args.Length > 0 && args[0] == "--simulator-child") return await SimulatorChild.ServeAsync();
return await UpstreamProbe.RunAsync(args.Length > 0 && args[0] == "--upstream-probe" ? args[1..] : args);
