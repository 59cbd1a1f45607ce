// Starts mongo-java-server (in-memory backend) for the pack-stream Python-interop
// tests. Built and cached by scripts/mongo-java-server.sh.
//
//   java -cp <classpath> Launcher PORT      (PORT 0 = pick a free port)
//
// Listens on 127.0.0.1 only. When ready, prints exactly one stdout line,
// "listening 127.0.0.1:<port>", then serves until killed (SIGTERM/SIGINT).
// Server logging (slf4j-simple) goes to stderr, at "warn" unless the caller set
// -Dorg.slf4j.simpleLogger.defaultLogLevel=... (e.g. via JAVA_TOOL_OPTIONS).
//
// Small changes to the stock server (see Backend below):
//  - it claims MongoDB 4.4 / wire version 9 (the stock maximum, "5.0", says wire 8,
//    which pymongo 4.20 and the Node mongodb 7 driver refuse);
//  - it answers `hello` (stock 1.47 only knows `isMaster`);
//  - buildInfo carries `mongoJavaServer: {version}` so clients can tell it apart,
//    the way FerretDB adds `ferretdbVersion`;
//  - text indexes are refused (code 67). Stock 1.47 has no text search ($text
//    fails), accepts the first {"$**": "text"} index of a database as a no-op,
//    refuses later ones, and then cannot drop that collection or database.

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import io.netty.channel.Channel;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class Launcher {
    public static void main(String[] args) throws InterruptedException {
        if (args.length != 1) {
            System.err.println("usage: Launcher PORT");
            System.exit(2);
        }
        int port;
        try {
            port = Integer.parseInt(args[0]);
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 0 || port > 65535) {
            System.err.println("Launcher: bad port: " + args[0]);
            System.exit(2);
        }

        // Must be set before the first logger exists, i.e. before MongoServer loads.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }

        MongoServer server = new MongoServer(new Backend().version(new ClaimedVersion()));
        try {
            server.bind("127.0.0.1", port);
        } catch (Exception e) {
            // e.g. BindException, thrown although bind() does not declare it. Exit
            // explicitly: Netty's event-loop threads would keep the JVM alive.
            System.err.println("Launcher: cannot listen on 127.0.0.1:" + port + ": " + e);
            server.shutdownNow();
            System.exit(1);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "shutdown"));

        System.out.println("listening 127.0.0.1:" + server.getLocalAddress().getPort());
        System.out.flush();
        Thread.currentThread().join();
    }

    private static final class Backend extends MemoryBackend {
        private final Document marker = new Document("version", jarVersion());

        @Override
        public Document handleCommand(Channel channel, String db, String command, Document query) {
            if (command.equalsIgnoreCase("hello")) {
                Document reply = super.handleCommand(channel, db, "isMaster", query);
                reply.remove("ismaster");
                reply.put("isWritablePrimary", Boolean.TRUE);
                return reply;
            }
            if (command.equalsIgnoreCase("createIndexes") && asksForTextIndex(query)) {
                throw new MongoServerError(67, "CannotCreateIndex", "text indexes are not supported by mongo-java-server");
            }
            Document reply = super.handleCommand(channel, db, command, query);
            if (command.equalsIgnoreCase("buildInfo")) {
                reply.put("mongoJavaServer", marker.clone());
            }
            return reply;
        }

        private static boolean asksForTextIndex(Document command) {
            if (command.get("indexes") instanceof List<?> specs) {
                for (Object spec : specs) {
                    if (spec instanceof Document d && d.get("key") instanceof Document key && key.containsValue("text")) {
                        return true;
                    }
                }
            }
            return false;
        }

        // The jars carry no version in their manifests; take it from the file name.
        private static String jarVersion() {
            String where = String.valueOf(MongoServer.class.getProtectionDomain().getCodeSource().getLocation());
            Matcher m = Pattern.compile("mongo-java-server-core-([^/]+)\\.jar$").matcher(where);
            return m.find() ? m.group(1) : "unknown";
        }
    }

    private static final class ClaimedVersion implements MongoVersion {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    }
}
