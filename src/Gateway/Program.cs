using Gateway.Cli;

return await CommandLine.RunAsync(args);
