//! Word lists for realistic generated values. Invented names only: no real people.

pub const FIRST_NAMES: [&str; 64] = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Lisa",
    "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Andrew",
    "Emily", "Paul", "Donna", "Joshua", "Michelle", "Kenji", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "Priya",
    "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura", "Jeffrey", "Sharon", "Ryan", "Cynthia",
    "Jacob", "Amy", "Gary", "Angela", "Nicholas", "Helen", "Eric", "Anna",
];

pub const LAST_NAMES: [&str; 80] = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Okafor", "Schmidt", "Tanaka", "Kowalski",
    "Novak", "Fischer", "Weber", "Dubois", "Moreau", "Rossi", "Russo", "Silva", "Santos", "Costa", "Jensen",
    "Hansen", "Larsen", "Berg", "Lindqvist", "Virtanen", "Murphy", "Kelly", "O'Brien", "Byrne", "Patel", "Shah",
    "Kumar", "Chen", "Wang", "Park",
];

pub const COMPANY_WORDS: [&str; 48] = [
    "Acme", "Global", "United", "Pinnacle", "Summit", "Blue", "Northern", "Pacific", "Atlantic", "Granite", "Silver",
    "Evergreen", "Harbor", "Cedar", "Falcon", "Vertex", "Quantum", "Horizon", "Redwood", "Beacon", "Sterling",
    "Keystone", "Meridian", "Liberty", "Pioneer", "Crescent", "Apex", "Orion", "Riverside", "Lakeside", "Ironclad",
    "Bright", "Cascade", "Frontier", "Golden", "Highland", "Juniper", "Maple", "Nimbus", "Oakridge", "Prairie",
    "Radiant", "Sapphire", "Tidewater", "Upland", "Vanguard", "Willow", "Zenith",
];

pub const COMPANY_NOUNS: [&str; 32] = [
    "Logistics", "Systems", "Foods", "Energy", "Health", "Analytics", "Motors", "Textiles", "Capital", "Media",
    "Robotics", "Pharma", "Networks", "Builders", "Software", "Farms", "Outfitters", "Labs", "Partners", "Freight",
    "Solar", "Telecom", "Dynamics", "Holdings", "Brewing", "Studios", "Insurance", "Bank", "Materials", "Aerospace",
    "Devices", "Retail",
];

pub const COMPANY_SUFFIXES: [&str; 6] = ["Inc.", "LLC", "Corp.", "Ltd.", "Group", "Co."];

pub const STREET_NAMES: [&str; 24] = [
    "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Market", "Mission",
    "Broadway", "Sunset", "River", "Spring", "Church", "Mill", "Harbor", "Industrial", "Commerce", "Valley",
    "Highland", "Jefferson",
];

pub const STREET_KINDS: [&str; 6] = ["St", "Ave", "Blvd", "Rd", "Way", "Dr"];

/// `(city, state name, state code, postal prefix, country, country code, latitude, longitude)`.
pub type City = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str, f64, f64);

pub const CITIES: [City; 20] = [
    ("San Francisco", "California", "CA", "941", "United States", "US", 37.7749, -122.4194),
    ("Los Angeles", "California", "CA", "900", "United States", "US", 34.0522, -118.2437),
    ("New York", "New York", "NY", "100", "United States", "US", 40.7128, -74.0060),
    ("Austin", "Texas", "TX", "787", "United States", "US", 30.2672, -97.7431),
    ("Dallas", "Texas", "TX", "752", "United States", "US", 32.7767, -96.7970),
    ("Seattle", "Washington", "WA", "981", "United States", "US", 47.6062, -122.3321),
    ("Chicago", "Illinois", "IL", "606", "United States", "US", 41.8781, -87.6298),
    ("Boston", "Massachusetts", "MA", "021", "United States", "US", 42.3601, -71.0589),
    ("Denver", "Colorado", "CO", "802", "United States", "US", 39.7392, -104.9903),
    ("Atlanta", "Georgia", "GA", "303", "United States", "US", 33.7490, -84.3880),
    ("Miami", "Florida", "FL", "331", "United States", "US", 25.7617, -80.1918),
    ("Portland", "Oregon", "OR", "972", "United States", "US", 45.5152, -122.6784),
    ("Toronto", "Ontario", "ON", "M5V", "Canada", "CA", 43.6532, -79.3832),
    ("Vancouver", "British Columbia", "BC", "V6B", "Canada", "CA", 49.2827, -123.1207),
    ("London", "", "", "EC1", "United Kingdom", "GB", 51.5074, -0.1278),
    ("Manchester", "", "", "M1 ", "United Kingdom", "GB", 53.4808, -2.2426),
    ("Berlin", "Berlin", "BE", "101", "Germany", "DE", 52.5200, 13.4050),
    ("Munich", "Bavaria", "BY", "803", "Germany", "DE", 48.1351, 11.5820),
    ("Paris", "", "", "750", "France", "FR", 48.8566, 2.3522),
    ("Mexico City", "Ciudad de México", "", "067", "Mexico", "MX", 19.4326, -99.1332),
];

pub const TITLES: [&str; 16] = [
    "CEO", "CFO", "CTO", "VP Sales", "VP Marketing", "Director of Operations", "Procurement Manager",
    "IT Manager", "Head of Data", "Account Manager", "Sales Representative", "Office Manager", "Engineer",
    "Analyst", "Buyer", "Controller",
];

pub const DEPARTMENTS: [&str; 8] =
    ["Sales", "Marketing", "Finance", "Operations", "IT", "Procurement", "Engineering", "Support"];

/// `(product name, product code, list price)`.
pub const PRODUCTS: [(&str, &str, f64); 10] = [
    ("GenWatt Diesel 10kW", "GC1020", 5000.0),
    ("GenWatt Diesel 200kW", "GC1040", 25000.0),
    ("GenWatt Propane 100kW", "GC5040", 15000.0),
    ("Installation: Portable", "IN7020", 1000.0),
    ("Installation: Industrial - High", "IN7040", 15000.0),
    ("SLA: Bronze", "SL9020", 2000.0),
    ("SLA: Silver", "SL9040", 3000.0),
    ("SLA: Gold", "SL9060", 4000.0),
    ("Analytics Add-on (per seat)", "AN1010", 120.0),
    ("Data Connector", "DC2000", 750.0),
];

pub const DEAL_KINDS: [&str; 6] = ["Expansion", "Renewal", "New Business", "Upsell", "Pilot", "Replacement"];

pub const CASE_SUBJECTS: [&str; 10] = [
    "Generator will not start",
    "Invoice amount incorrect",
    "Request for on-site service",
    "Performance degradation after update",
    "Cannot log in to portal",
    "Shipment arrived damaged",
    "Question about SLA coverage",
    "Data export fails",
    "Warranty claim",
    "Feature request: bulk export",
];

pub const TASK_NOTES: [&str; 6] = [
    "Discussed renewal timeline and budget.",
    "Left voicemail, will try again next week.",
    "Sent pricing proposal.",
    "Customer asked for a product demo.",
    "Follow-up on open support case.",
    "Confirmed contract details.",
];

pub const DESCRIPTIONS: [&str; 6] = [
    "Long-standing customer with several sites.",
    "Referred by a partner at the annual conference.",
    "Evaluating a move from a competitor.",
    "Prefers communication by email.",
    "Strategic account: quarterly business reviews.",
    "Budget cycle starts in October.",
];
