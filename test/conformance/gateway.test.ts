import { httpGateway } from '../../cloud/gateway/http-gateway.js';
import { instantGateway } from '../../cloud/gateway/instant-gateway.js';
import { bindScenario, fetchLedger } from '../../simulator/gateway/gateway-control.js';
import { netCharged } from '../../simulator/gateway/ledger.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { describeGatewayConformance } from './gateway.js';

/** Every Gateway and every stand-in for one, through the same suite. */
const CHARGES = '134567890123456789';
const HANGS = '114567890123456789';

describeGatewayConformance(
  'simulator ScriptedGateway, in process (instant)',
  async () => {
    const gateway = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    gateway.bind(HANGS, { name: 'hang', charged: false });
    return { gateway, codes: { charges: CHARGES, hang: HANGS }, netCharged: async (t) => gateway.net(t), close: async () => gateway.stop() };
  },
  { capabilities: ['ledger', 'hang'] },
);

describeGatewayConformance(
  'simulator ScriptedGateway, in process (default mix, 5–40 ms latency)',
  async () => {
    const gateway = new ScriptedGateway({ seed: 'conformance' });
    gateway.bind(CHARGES, { name: 'success' });
    gateway.bind(HANGS, { name: 'hang', charged: true });
    return { gateway, codes: { charges: CHARGES, hang: HANGS }, netCharged: async (t) => gateway.net(t), close: async () => gateway.stop() };
  },
  { capabilities: ['ledger', 'hang'] },
);

describeGatewayConformance(
  'simulator ScriptedGateway behind its HTTP server, through httpGateway(url)',
  async () => {
    const scripted = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    const server = await scripted.serve();
    await bindScenario(server.url, HANGS, { name: 'hang', charged: false });
    return {
      gateway: httpGateway(server.url),
      codes: { charges: CHARGES, hang: HANGS },
      // Read over the wire, as another process would.
      netCharged: async (t) => netCharged(await fetchLedger(server.url)).get(t) ?? 0,
      close: async () => {
        scripted.stop();
        await server.close();
      },
    };
  },
  { capabilities: ['ledger', 'hang'] },
);

describeGatewayConformance('instantGateway (benchmarks only)', async () => ({ gateway: instantGateway(), codes: { charges: CHARGES } }), {
  capabilities: [],
  why: 'approves every pay at once and remembers nothing, by design',
});
