/** The test CA lives with the simulator, which makes wallet and broker certificates at run time too. */
export * from '../../simulator/tls/test-ca.js';
