import { startEchoBroker } from '../floors.js';
import { tell, type IpcMessage } from '../harness.js';

/**
 * The broker floor as its own process, laid out like the cloud (aedes and an mqtt.js service client
 * in one process, boxes in another): aedes with TCP_NODELAY and an echo service up/<id> → down/<id>.
 */
const broker = await startEchoBroker();
tell({ type: 'ready', url: broker.url, pid: process.pid });
const stop = () => void broker.close().then(() => process.exit(0));
process.on('message', (m: IpcMessage) => m.type === 'stop' && stop());
process.on('disconnect', stop);
