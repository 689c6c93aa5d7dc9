// Example Things for mamori's WoT tests, served by the Eclipse Thingweb node-wot servient
// (scripts/lab/wot-servient.sh). Three devices: a counter (node-wot's own example shape:
// observable property, actions, an event), a lamp with an object property, and a sensor whose
// firmware is broken: it serves a temperature outside the range its own TD declares.

function counter() {
    let count = 0;
    let lastChange = new Date().toISOString();
    return WoT.produce({
        title: "counter",
        description: "a counter that counts up every second",
        properties: {
            count: { type: "integer", minimum: 0, observable: true, readOnly: true },
            lastChange: { type: "string", format: "date-time", readOnly: true },
        },
        actions: {
            increment: { output: { type: "integer" } },
            reset: {},
        },
        events: { change: { data: { type: "integer", minimum: 0 } } },
    }).then((thing) => {
        const set = (n) => {
            count = n;
            lastChange = new Date().toISOString();
            thing.writeProperty("count", count);
            thing.writeProperty("lastChange", lastChange);
            thing.emitEvent("change", count);
        };
        set(0);
        thing.setActionHandler("increment", () => { set(count + 1); return Promise.resolve(count); });
        thing.setActionHandler("reset", () => { set(0); return Promise.resolve(); });
        setInterval(() => set(count + 1), 1000);
        return thing.expose().then(() => console.info("exposed counter"));
    });
}

function lamp() {
    return WoT.produce({
        title: "lamp",
        description: "a dimmable colour lamp",
        properties: {
            on: { type: "boolean" },
            brightness: { type: "integer", minimum: 0, maximum: 100 },
            color: {
                type: "object",
                properties: {
                    r: { type: "integer", minimum: 0, maximum: 255 },
                    g: { type: "integer", minimum: 0, maximum: 255 },
                    b: { type: "integer", minimum: 0, maximum: 255 },
                },
                required: ["r", "g", "b"],
            },
            mode: { type: "string", enum: ["day", "night", "party"] },
        },
        actions: { toggle: {} },
    }).then((thing) => {
        thing.writeProperty("on", true);
        thing.writeProperty("brightness", 80);
        thing.writeProperty("color", { r: 255, g: 200, b: 120 });
        thing.writeProperty("mode", "day");
        thing.setActionHandler("toggle", () =>
            thing.readProperty("on").then((on) => thing.writeProperty("on", !on)));
        return thing.expose().then(() => console.info("exposed lamp"));
    });
}

function brokenSensor() {
    return WoT.produce({
        title: "broken-sensor",
        description: "a sensor whose firmware serves values its own TD forbids",
        properties: {
            temperature: { type: "number", minimum: -40, maximum: 125, unit: "celsius", readOnly: true },
            humidity: { type: "number", minimum: 0, maximum: 100, readOnly: true },
        },
    }).then((thing) => {
        // the read handler bypasses the stored value: 300 °C, outside [-40, 125]
        thing.setPropertyReadHandler("temperature", () => Promise.resolve(300));
        thing.writeProperty("humidity", 45.5);
        return thing.expose().then(() => console.info("exposed broken-sensor"));
    });
}

counter().then(lamp).then(brokenSensor).catch((e) => {
    console.error("things.js: " + e);
    process.exit(1);
});
