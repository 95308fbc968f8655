using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Gateway.Benchmarks.RequestPathBenchmarks).Assembly).Run(args);
