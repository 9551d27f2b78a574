import { join } from "node:path";

/**
 * The ironic.conf of a stack's embedded Ironic (Debian bookworm's 21.4.4,
 * all-in-one `ironic`). Each key says why it is set (deployer/ironic/README.md
 * tells what failed without it); everything else is Ironic's default.
 */
export interface IronicConfInput {
  /** The embedded Ironic's folder in the state folder: database, htpasswd, logs, boot files. */
  dir: string;
  /** Where the API listens (the provisioning address, or loopback for a stack without one). */
  listen: { host: string; port: number };
  /** The API's URL as machines reach it: the deploy ramdisk's `ipa-api-url`. */
  apiUrl: string;
  /** Where an http server serves `httpboot/` (Ironic writes its iPXE scripts there; it serves nothing itself). */
  httpUrl: string;
  /** Speak https with the stack's certificate; `ca` is what the conductor trusts when it checks image URLs. */
  tls?: { cert: string; key: string; ca: string };
}

/** Files and folders of the embedded Ironic, inside `dir`. */
export function ironicLayout(dir: string) {
  return {
    conf: join(dir, "ironic.conf"),
    // --config-dir: an empty folder of our own, or oslo.config reads /etc/ironic/ironic.conf.d/ as well.
    confDir: join(dir, "conf.d"),
    htpasswd: join(dir, "htpasswd"),
    database: join(dir, "ironic.sqlite"),
    log: join(dir, "ironic.log"),
    httpRoot: join(dir, "httpboot"),
    tftpRoot: join(dir, "tftpboot"),
    tmp: join(dir, "tmp"),
    locks: join(dir, "locks"),
    deployLogs: join(dir, "deploy-logs"),
  };
}

/** The folders Ironic needs before it starts (it creates none of them, and fails to load `ipxe` without httpboot/). */
export const ironicFolders = (dir: string) => {
  const l = ironicLayout(dir);
  return [l.confDir, l.httpRoot, l.tftpRoot, join(l.tftpRoot, "master_images"), l.tmp, l.locks, l.deployLogs];
};

/** Ironic 21.4's default_log_levels (ironic/conf/opts.py): the option replaces the list, so it is given whole. */
const IRONIC_LOG_LEVELS = [
  "amqp=WARNING",
  "amqplib=WARNING",
  "qpid.messaging=INFO",
  "oslo.messaging=INFO",
  "oslo_messaging=INFO",
  "sqlalchemy=WARNING",
  "stevedore=INFO",
  "eventlet.wsgi.server=INFO",
  "iso8601=WARNING",
  "requests=WARNING",
  "glanceclient=WARNING",
  "urllib3.connectionpool=WARNING",
  "keystonemiddleware.auth_token=INFO",
  "keystoneauth.session=INFO",
  "openstack=WARNING",
  "oslo_policy=WARNING",
  "oslo_concurrency.lockutils=WARNING",
];

export function ironicConf(i: IronicConfInput): string {
  const l = ironicLayout(i.dir);
  const sections: Record<string, Record<string, string | number | boolean>> = {
    DEFAULT: {
      // The conductor's name in the database: fixed, so a renamed host keeps its nodes.
      host: "ooo",
      auth_strategy: "http_basic",
      http_basic_auth_user_file: l.htpasswd,
      // API and conductor in one process (the `ironic` command), no message bus.
      rpc_transport: "none",
      state_path: i.dir,
      // ipmitool's password files (-f) land here, in a 0700 folder, not in /tmp.
      tempdir: l.tmp,
      log_file: l.log,
      // Ironic's own defaults, and its cleaning quiet: with cleaning off it logs the whole node at INFO,
      // driver_info and so the BMC's password in it ("Automated cleaning is disabled …, node Node(…)").
      default_log_levels: [...IRONIC_LOG_LEVELS, "ironic.conductor.cleaning=WARNING"].join(","),
      // fake-hardware and manual-management (noop management, fake power): nodes without a BMC, for tests.
      enabled_hardware_types: "ipmi,redfish,fake-hardware,manual-management",
      enabled_boot_interfaces: "ipxe,fake",
      enabled_deploy_interfaces: "direct,fake",
      enabled_power_interfaces: "ipmitool,redfish,fake",
      enabled_management_interfaces: "ipmitool,redfish,noop,fake",
      // No Neutron: the provisioning network is ooo's (dnsmasq), flat.
      enabled_network_interfaces: "noop",
      default_network_interface: "noop",
      // The conductor HEADs every http image URL before a deploy.
      webserver_verify_ca: i.tls ? i.tls.ca : true,
    },
    api: {
      host_ip: i.listen.host,
      port: i.listen.port,
      ...(i.tls ? { enable_ssl_api: true } : {}),
    },
    ...(i.tls ? { ssl: { cert_file: i.tls.cert, key_file: i.tls.key } } : {}),
    database: { connection: `sqlite:///${l.database}` },
    // ooo's dnsmasq answers DHCP; Ironic's default provider is Neutron.
    dhcp: { dhcp_provider: "none" },
    // Cleaning off: ooo erases a machine's disks itself (its ramdisk), and the deploys skip it.
    conductor: { automated_clean: false },
    deploy: { http_root: l.httpRoot, http_url: i.httpUrl },
    pxe: { tftp_root: l.tftpRoot, tftp_master_path: join(l.tftpRoot, "master_images") },
    // Without Keystone the conductor finds its own URL (for the ramdisk's ipa-api-url) only here.
    service_catalog: { endpoint_override: i.apiUrl },
    // ipmitool retries by itself (-R/-N), and Ironic only the errors it knows to pass (a busy BMC): with
    // Ironic's default it retried every error, a wrong password too, for command_retry_timeout (60 s) a call.
    ipmi: { use_ipmitool_retries: true },
    // The agent's logs on a failed deploy, where ooo can read them.
    agent: { deploy_logs_storage_backend: "local", deploy_logs_local_path: l.deployLogs },
    oslo_concurrency: { lock_path: l.locks },
  };
  const lines = ["# ooo: the stack's embedded Ironic (written by ooo; changes are overwritten)"];
  for (const [name, keys] of Object.entries(sections)) {
    lines.push("", `[${name}]`);
    for (const [k, v] of Object.entries(keys)) lines.push(`${k} = ${v}`);
  }
  return lines.join("\n") + "\n";
}
