using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>Tests on the shared gateway fixture that change the simulator's knobs: each starts and ends with its defaults.</summary>
public abstract class SimulatorResetting : IDisposable
{
    protected readonly GatewayFixture _fx;

    protected SimulatorResetting(GatewayFixture fx)
    {
        _fx = fx;
        fx.ResetSimulator();
    }

    public void Dispose() => _fx.ResetSimulator();
}
