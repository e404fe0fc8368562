JSON.stringify = () => { throw new TypeError('broken'); };
