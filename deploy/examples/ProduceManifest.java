// A carrier's minimal producer in Java: one manifest event to s321, in Avro single-object
// encoding (org.apache.avro.message.BinaryMessageEncoder), with kafka-clients.
//
//   javac -cp 'libs/*' ProduceManifest.java
//   java -cp 'libs/*:.' ProduceManifest <schemas dir> <bootstrap> <topic> <house bill> \
//        <event id> <event time, epoch ms>
//
// libs/ holds org.apache.kafka:kafka-clients and org.apache.avro:avro with their runtime
// dependencies; <schemas dir> is s321's schemas/ directory. See deploy/CARRIERS.md.

import java.io.File;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Properties;

import org.apache.avro.Conversions;
import org.apache.avro.LogicalType;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.generic.GenericRecordBuilder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class ProduceManifest {
    /** The schema files a manifest event needs, each after the types it refers to. */
    private static final List<String> FILES = List.of(
            "Action", "Mode", "ReleasePath", "Address", "Party", "PgaData", "LineItem",
            "EventHeader", "ManifestEvent");
    private static final Conversions.DecimalConversion DECIMALS =
            new Conversions.DecimalConversion();

    public static void main(String[] args) throws Exception {
        Schema.Parser parser = new Schema.Parser();
        for (String name : FILES) {
            parser.parse(new File(args[0], name + ".avsc"));
        }
        Schema manifest = parser.getTypes().get("s321.v1.ManifestEvent");
        String bootstrap = args[1], topic = args[2], houseBill = args[3], eventId = args[4];
        long eventTime = Long.parseLong(args[5]);

        GenericRecord value = manifest(parser, houseBill, eventId, eventTime);
        ByteBuffer encoded = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), manifest)
                .encode(value);
        byte[] bytes = new byte[encoded.remaining()];
        encoded.get(bytes);

        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("enable.idempotence", "true");
        props.put("key.serializer", ByteArraySerializer.class.getName());
        props.put("value.serializer", ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            // the key is the shipment key; Java's default partitioner (murmur2) is the one
            // s321 expects
            producer.send(new ProducerRecord<>(topic, shipmentKey(houseBill).getBytes("UTF-8"),
                    bytes)).get();
        }
        System.out.println("sent " + bytes.length + " bytes to " + topic);
    }

    static String shipmentKey(String bill) {
        return bill.replaceAll("[\\s\\-_./]", "").toUpperCase();
    }

    static GenericRecord manifest(Schema.Parser parser, String houseBill, String eventId,
            long eventTime) {
        Schema m = parser.getTypes().get("s321.v1.ManifestEvent");
        Schema line = parser.getTypes().get("s321.v1.LineItem");
        GenericRecord header = new GenericRecordBuilder(parser.getTypes().get("s321.v1.EventHeader"))
                .set("event_id", eventId)
                .set("event_time", eventTime)  // timestamp-millis: epoch milliseconds
                .set("source", "CARR01")
                .set("action", enumSymbol(parser, "s321.v1.Action", "ADD"))
                .build();
        GenericRecord item = new GenericRecordBuilder(line)
                .set("description", "cotton t-shirt, men's")
                .set("quantity", 2L)
                .set("value", decimal(line.getField("value").schema(), "12.50"))
                .set("weight_kg", decimal(branch(line.getField("weight_kg").schema()), "0.350"))
                .set("hts", "6109100012")
                .set("origin_country", "CN")
                .build();
        return new GenericRecordBuilder(m)
                .set("header", header)
                .set("house_bill", houseBill)
                .set("master_bill", "157-12345675")
                .set("carrier_code", "CARR")
                .set("mode", enumSymbol(parser, "s321.v1.Mode", "AIR"))
                .set("port_of_entry", "4701")
                .set("estimated_arrival", eventTime + 14 * 3600 * 1000L)
                .set("shipper", party(parser, "Example Trading Co", "12 Harbour Road",
                        "Kowloon Bay", "CN"))
                .set("consignee", party(parser, "Jane Q Public", "1 Main St", "Queens", "US"))
                .set("origin_country", "CN")
                .set("lines", List.of(item))
                .set("shipping_weight_kg", decimal(m.getField("shipping_weight_kg").schema(),
                        "0.400"))
                .build();  // fields left out take their schema defaults (currency USD, ...)
    }

    static GenericRecord party(Schema.Parser parser, String name, String line1, String city,
            String country) {
        GenericRecord address = new GenericRecordBuilder(parser.getTypes().get("s321.v1.Address"))
                .set("line1", line1).set("city", city).set("country", country).build();
        return new GenericRecordBuilder(parser.getTypes().get("s321.v1.Party"))
                .set("name", name).set("address", address).build();
    }

    static GenericData.EnumSymbol enumSymbol(Schema.Parser parser, String type, String symbol) {
        return new GenericData.EnumSymbol(parser.getTypes().get(type), symbol);
    }

    /** The non-null branch of an optional field's union. */
    static Schema branch(Schema union) {
        for (Schema s : union.getTypes()) {
            if (s.getType() != Schema.Type.NULL) {
                return s;
            }
        }
        throw new IllegalArgumentException("no non-null branch");
    }

    /** A decimal as the bytes its schema's scale gives (the scale must match exactly). */
    static ByteBuffer decimal(Schema schema, String text) {
        LogicalType type = schema.getLogicalType();
        return DECIMALS.toBytes(new BigDecimal(text), schema, type);
    }

    private ProduceManifest() {
    }
}
