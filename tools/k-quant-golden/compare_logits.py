"""Compares two logit files of llama_logits.cpp's format row by row: bit-identical rows, same
argmax, largest difference. usage: compare_logits.py A.bin B.bin LABEL (vocabulary 49,152)."""
import struct, sys, array
def load(p):
    b=open(p,'rb').read(); off=0; out=[]
    while off<len(b):
        n=struct.unpack_from('<I',b,off)[0]; off+=4
        rows=[]
        for r in range(n):
            rows.append(b[off:off+49152*4]); off+=49152*4
        out.append(rows)
    return out
L=load(sys.argv[1]); T=load(sys.argv[2])
same=tot=top=0; maxd=0.0
for a,b in zip(L,T):
    for ra,rb in zip(a,b):
        tot+=1; same+= ra==rb
        fa=array.array('f'); fa.frombytes(ra); fb=array.array('f'); fb.frombytes(rb)
        top+= max(range(len(fa)),key=fa.__getitem__)==max(range(len(fb)),key=fb.__getitem__)
        maxd=max(maxd,max(abs(x-y) for x,y in zip(fa,fb)))
print(f"{sys.argv[3]}: bit-identical rows {same}/{tot}, same argmax {top}/{tot}, max |diff| {maxd:.3g}")
