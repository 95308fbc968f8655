using Gateway.Control;
using Gateway.Observability;
using Gateway.Routing;
using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>What the endpoints share: the store, the config-owned entries, live backend health, and the post-write snapshot rebuild.</summary>
internal sealed class AdminServices(ControlPlane control, ConfigManaged managed, BackendHealthRegistry health, GatewayLog log)
{
    public IStore Store => control.Store;
    public ConfigManaged Managed { get; } = managed;
    public BackendHealthRegistry Health { get; } = health;

    /// <summary>
    /// After a successful write: rebuild this instance's snapshot before the response leaves (read-your-writes) and tell the other
    /// instances. Not cancelled by the client: the write is done and the snapshot must follow it. A failed rebuild does not undo the
    /// write, so the caller still gets its success; the periodic refresh catches up.
    /// </summary>
    public async Task AfterWriteAsync()
    {
        try
        {
            await control.AfterWriteAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            log.Warn($"admin write saved, but the snapshot was not rebuilt ({(e is StoreException s ? s.Message : e.GetType().Name)}); the next refresh picks it up");
        }
    }
}
