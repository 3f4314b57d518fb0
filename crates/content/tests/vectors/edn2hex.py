#!/usr/bin/env python3
"""EDN (subset) -> deterministic CBOR hex, plus MIMI message ID check. See README.md."""
import sys, struct, hashlib, re

class P:
    def __init__(s, t): s.t=t; s.i=0
    def ws(s):
        t=s.t
        while s.i<len(t):
            c=t[s.i]
            if c in ' \t\r\n,': s.i+=1
            elif c=='#':
                while s.i<len(t) and t[s.i]!='\n': s.i+=1
            elif c=='/':
                j=t.index('/',s.i+1); s.i=j+1
            else: break
    def strlit(s):
        q=s.t[s.i]; s.i+=1; out=[]
        while True:
            c=s.t[s.i]
            if c=='\\':
                n=s.t[s.i+1]; s.i+=2
                out.append({'n':'\n','\\':'\\',"'":"'",'"':'"','t':'\t'}[n])
            elif c==q: s.i+=1; break
            else: out.append(c); s.i+=1
        return ''.join(out)
    def atom(s):
        s.ws(); t=s.t; c=t[s.i]
        if c=='[':
            s.i+=1; items=[]
            while True:
                s.ws()
                if t[s.i]==']': s.i+=1; return ('a',items)
                items.append(s.val())
        if c=='{':
            s.i+=1; items=[]
            while True:
                s.ws()
                if t[s.i]=='}': s.i+=1; return ('m',items)
                k=s.val(); s.ws(); assert t[s.i]==':'; s.i+=1; v=s.val(); items.append((k,v))
        if t.startswith("h'",s.i):
            j=t.index("'",s.i+2); hx=re.sub(r'#[^\n]*','',t[s.i+2:j]); hx=re.sub(r'\s','',hx); s.i=j+1
            return ('b',bytes.fromhex(hx))
        if c=="'": return ('b',s.strlit().encode())
        if c=='"': return ('t',s.strlit())
        for w,v in (('null',('s',22)),('true',('s',21)),('false',('s',20))):
            if t.startswith(w,s.i): s.i+=len(w); return v
        m=re.compile(r'-?\d+').match(t,s.i); s.i=m.end(); return ('i',int(m.group()))
    def val(s):
        v=s.atom()
        while True:
            save=s.i; s.ws()
            if s.i<len(s.t) and s.t[s.i]=='+':
                s.i+=1; w=s.atom(); assert v[0]==w[0] and v[0] in 'bt'; v=(v[0],v[1]+w[1])
            else: s.i=save; return v

def head(mt,n):
    if n<24: return bytes([mt<<5|n])
    if n<256: return bytes([mt<<5|24,n])
    if n<65536: return bytes([mt<<5|25])+struct.pack('>H',n)
    if n<2**32: return bytes([mt<<5|26])+struct.pack('>I',n)
    return bytes([mt<<5|27])+struct.pack('>Q',n)
def enc(v):
    k,x=v
    if k=='i': return head(0,x) if x>=0 else head(1,-1-x)
    if k=='b': return head(2,len(x))+x
    if k=='t': b=x.encode(); return head(3,len(b))+b
    if k=='a': return head(4,len(x))+b''.join(enc(e) for e in x)
    if k=='m':
        ents=sorted(((enc(a),enc(b)) for a,b in x))
        return head(5,len(x))+b''.join(a+b for a,b in ents)
    if k=='s': return bytes([0xe0|x])

for f in sys.argv[1:]:
    txt=open(f,encoding='utf-8').read()
    p=P(txt); v=p.val(); p.ws(); assert p.i==len(txt), f
    cb=enc(v)
    open(f[:-4]+'.hex','w').write(cb.hex()+'\n')
    m=re.search(r"message ID = h'([0-9a-f]+)\s*#\s*([0-9a-f]+)'",txt)
    if m and v[0]=='a' and len(v[1])==7:
        exts=dict((a[1],b[1]) for a,b in v[1][5][1])
        su=exts[1].encode(); ru=exts[2].encode()
        h=hashlib.sha256(struct.pack('>H',len(su))+su+struct.pack('>H',len(ru))+ru+cb+v[1][0][1]).digest()
        mid=(b'\x01'+h[:31]).hex()
        print(f, 'OK' if mid==m.group(1)+m.group(2) else 'MISMATCH '+mid)
    else: print(f,'no id', len(cb))
