// Reads the application's secrets from the secret-zero agent, once, at start-up.
// JDK 16+ only: a UnixDomainSocketAddress SocketChannel and HTTP/1.1 written by hand
// (java.net.http.HttpClient cannot dial a Unix socket). No build step needed:
//
//   SECRET_ZERO_SOCKET=/run/secret-zero/agent.sock java ReadSecret.java [KEY]
//
// Prints the names of the keys received, never their values (unless KEY is given).
// Exit codes, as `secret-zero get`: 10 refused (403), 11 no delivery left (410),
// 12 agent unreachable or not ready, 1 anything else.

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

public final class ReadSecret {
    static final String DEFAULT_SOCKET = "/run/secret-zero/agent.sock";

    static final class AgentException extends Exception {
        final int code;

        AgentException(int code, String message) {
            super(message);
            this.code = code;
        }
    }

    /** One GET /v1/secret; the raw JSON document, kept in memory only. */
    static char[] readSecrets(String socket) throws AgentException {
        if (socket.startsWith("@")) {
            throw new AgentException(12, "the JDK cannot dial abstract sockets (" + socket + "): run the agent with a socket path");
        }
        byte[] answer;
        try (SocketChannel channel = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            String request = "GET /v1/secret HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            channel.write(ByteBuffer.wrap(request.getBytes(StandardCharsets.US_ASCII)));
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(16 * 1024);
            while (channel.read(buf) >= 0) {
                out.write(buf.array(), 0, buf.position());
                buf.clear();
            }
            Arrays.fill(buf.array(), (byte) 0);
            answer = out.toByteArray();
        } catch (IOException e) {
            throw new AgentException(12, "cannot reach the agent on " + socket + ": " + e);
        }
        int headEnd = indexOf(answer, "\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        if (headEnd < 0) {
            throw new AgentException(1, "not an HTTP answer from " + socket);
        }
        String head = new String(answer, 0, headEnd, StandardCharsets.US_ASCII);
        String[] statusLine = head.split("\r\n", 2)[0].split(" ", 3);
        int status = statusLine.length > 1 ? Integer.parseInt(statusLine[1]) : 0;
        // A Connection: close answer ends with the stream; Content-Length is not needed.
        char[] body = StandardCharsets.UTF_8.decode(ByteBuffer.wrap(answer, headEnd + 4, answer.length - headEnd - 4)).array();
        Arrays.fill(answer, (byte) 0);
        if (status == 200) {
            return body;
        }
        String message = "HTTP " + status;
        try {
            Map<String, Object> detail = Json.object(body);
            if (detail.get("error") instanceof String error) {
                message = error + (detail.get("hint") instanceof String hint && !hint.isEmpty() ? " (hint: " + hint + ")" : "");
            }
        } catch (IllegalArgumentException notJson) {
            // keep the status
        }
        switch (status) {
            case 403: throw new AgentException(10, "refused by the agent (403): " + message);
            case 410: throw new AgentException(11, "no delivery left (410): the secrets were already read: " + message);
            case 503: throw new AgentException(12, "the agent is not ready (503): " + message);
            default: throw new AgentException(1, "the agent answered HTTP " + status + ": " + message);
        }
    }

    static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) continue outer;
            }
            return i;
        }
        return -1;
    }

    /**
     * Just enough JSON for a flat document (the JDK has no parser): top-level keys,
     * string values decoded, other values kept as their JSON text.
     */
    static final class Json {
        private final char[] s;
        private int i;

        private Json(char[] s) {
            this.s = s;
        }

        static Map<String, Object> object(char[] text) {
            Json p = new Json(text);
            p.ws();
            Map<String, Object> map = new TreeMap<>();
            p.expect('{');
            p.ws();
            if (p.peek() == '}') {
                p.i++;
                return map;
            }
            while (true) {
                p.ws();
                String key = p.string();
                p.ws();
                p.expect(':');
                p.ws();
                int start = p.i;
                Object value = p.peek() == '"' ? p.string() : p.skipValue(start);
                map.put(key, value);
                p.ws();
                if (p.peek() == ',') {
                    p.i++;
                    continue;
                }
                p.expect('}');
                return map;
            }
        }

        private char peek() {
            if (i >= s.length) throw new IllegalArgumentException("unexpected end of JSON");
            return s[i];
        }

        private void expect(char c) {
            if (peek() != c) throw new IllegalArgumentException("expected '" + c + "' at " + i);
            i++;
        }

        private void ws() {
            while (i < s.length && Character.isWhitespace(s[i])) i++;
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (peek() != '"') {
                char c = s[i++];
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                char e = peek();
                i++;
                switch (e) {
                    case 'n': b.append('\n'); break;
                    case 't': b.append('\t'); break;
                    case 'r': b.append('\r'); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'u': b.append((char) Integer.parseInt(new String(s, i, 4), 16)); i += 4; break;
                    default: b.append(e);
                }
            }
            i++;
            return b.toString();
        }

        /** Skips a number, literal, array or object; returns its JSON text. */
        private String skipValue(int start) {
            int depth = 0;
            while (i < s.length) {
                char c = s[i];
                if (c == '"') {
                    string();
                    continue;
                }
                if (c == '{' || c == '[') depth++;
                if (c == '}' || c == ']') {
                    if (depth == 0) break;
                    depth--;
                }
                if (c == ',' && depth == 0) break;
                i++;
            }
            return new String(s, start, i - start).trim();
        }
    }

    public static void main(String[] args) {
        String socket = System.getenv("SECRET_ZERO_SOCKET");
        if (socket == null || socket.isEmpty()) socket = DEFAULT_SOCKET;
        Map<String, Object> secrets;
        try {
            char[] document = readSecrets(socket);
            try {
                secrets = Json.object(document);
            } catch (IllegalArgumentException e) {
                System.err.println("ReadSecret (java): the document is not a JSON object");
                System.exit(1);
                return;
            } finally {
                Arrays.fill(document, '\0');
            }
        } catch (AgentException e) {
            System.err.println("ReadSecret (java): " + e.getMessage());
            System.exit(e.code);
            return;
        }
        System.out.println("ReadSecret (java): received " + secrets.size() + " keys: " + String.join(", ", secrets.keySet()));
        if (args.length > 0) {
            if (!secrets.containsKey(args[0])) {
                System.err.println("ReadSecret (java): no key \"" + args[0] + "\" in the document");
                System.exit(3);
            }
            System.out.println(args[0] + "=" + secrets.get(args[0]));
        }
        // ... start the application with secrets, never writing them to disk or the environment.
    }
}
